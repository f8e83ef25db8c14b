/**
 * `--symmetry orthogonal` through the extension (issue 21): Align with… on gpt2-tiny's folder A and
 * B = π(A) for a seeded permutation of its residual stream, heads and MLP units (tied, as trained
 * GPT-2s are; a permutation is one element of the generalized group), with activation matching on
 * token ids, as the picker's "Orthogonal maps" choice sends it. The run writes B' and
 * the folded A' beside it, both equivalence checks pass, B' is A' to float error, and the loss
 * curve that follows starts from A' (flat aligned path).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DenseTensor } from '../../src/core/checkpoint';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../src/core/matching/permute';
import { inferSpec } from '../../src/core/permspec';
import { openCheckpoint, writeSafetensors } from '../../src/core/safetensors';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import { inWorkspace, writeTokenIds } from './fixtures';

const EXTENSION_ID = 'rebasin.rebasin';

async function readAll(file: string): Promise<Map<string, DenseTensor>> {
  const ck = await openCheckpoint(file);
  try {
    const out = new Map<string, DenseTensor>();
    for (const t of ck.tensors) out.set(t.name, { shape: t.shape, data: await ck.readFloat32(t.name) });
    return out;
  } finally {
    await ck.close();
  }
}

describe('Re-Basin extension: orthogonal symmetry (GPT-2)', function () {
  const root = inWorkspace('orthogonal');
  let a: string;
  let b: string;
  let ids: string;

  before(async function () {
    const fixture = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures', 'hf', 'gpt2-tiny');
    a = path.join(root, 'a');
    b = path.join(root, 'b');
    fs.mkdirSync(a, { recursive: true });
    fs.mkdirSync(b, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(fixture, f), path.join(a, f));
    const ck = await openCheckpoint(path.join(a, 'model.safetensors'));
    const { spec } = inferSpec(ck.tensors, readHfConfig(path.join(a, 'model.safetensors')));
    await ck.close();
    const moved = applyPermutations(spec, randomPermutations(spec, 23), await readAll(path.join(a, 'model.safetensors')));
    fs.copyFileSync(path.join(a, 'config.json'), path.join(b, 'config.json'));
    const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    await writeSafetensors(path.join(b, 'model.safetensors'), [...moved].map(([name, x]) => ({ name, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
    ids = writeTokenIds(path.join(root, 'ids.npy'), 16);
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    for (const p of [root, `${b}-aligned`, `${b}-aligned.a-folded`]) fs.rmSync(p, { recursive: true, force: true });
  });

  it('Align with… (activation, orthogonal maps) writes B\' and A\', B\' is A\', and the curve from A\' is flat', async function () {
    // The explorer's right-click gives the weights file of a Hugging Face folder.
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(path.join(b, 'model.safetensors')), undefined, {
      reference: vscode.Uri.file(path.join(a, 'model.safetensors')),
      method: 'activation',
      symmetry: 'orthogonal',
      data: vscode.Uri.file(ids),
      replace: true,
      openPanel: false,
    })) as AlignOutcome;
    assert.equal(outcome.written, true, outcome.reason);
    // A folder beside B's (B's layout, with the config.json the folded form needs), not a lone file.
    assert.equal(outcome.out, `${b}-aligned`);
    assert.ok(fs.existsSync(path.join(outcome.out, 'config.json')));
    const r = outcome.result;
    assert.equal(r.symmetry, 'orthogonal');
    assert.equal(r.equivalence?.ok, true, JSON.stringify(r.equivalence));
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    assert.ok(r.referenceFolded && fs.existsSync(r.referenceFolded), `A' at ${r.referenceFolded}`);

    const weights = (p: string): string => (fs.statSync(p).isDirectory() ? path.join(p, 'model.safetensors') : p);
    const [bPrime, aPrime] = await Promise.all([readAll(weights(outcome.out)), readAll(weights(r.referenceFolded))]);
    let worst = 0;
    for (const [name, t] of aPrime) {
      const u = bPrime.get(name);
      assert.ok(u, `B' holds ${name}`);
      for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u.data[i]));
    }
    assert.ok(worst < 1e-3, `B' is A' (largest difference ${worst})`);

    const curve = outcome.curve;
    assert.ok(curve?.aligned, `a loss curve with an aligned path (${outcome.curveNote ?? 'no note'})`);
    const start = curve.aligned.loss[0];
    for (const x of curve.aligned.loss) assert.ok(Math.abs(x - start) <= 1e-3 * Math.abs(start), `aligned ${x} vs A' ${start}`);
  });
});
