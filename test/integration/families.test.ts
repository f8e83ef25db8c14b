/**
 * Mixtral (experts) and ViT in the extension (issue 20), on the Hugging Face fixtures: the
 * inspector names the family and describes the experts and heads per layer; Align with… on a
 * pair where B is A under a known element of its symmetry group writes π(B), and π(B) is A
 * exactly; the barrier (token ids for Mixtral, N×3×32×32 images for ViT) is flat on the aligned
 * path. B is made in the workspace with the project's own spec inference and permutation code,
 * as the CLI tests do (test/unit/cli/mixtral.spawn.test.ts, vit-cli.spawn.test.ts).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DenseTensor } from '../../src/core/checkpoint';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../src/core/matching/permute';
import { stackExperts, unstackSources } from '../../src/core/moe/expertStack';
import { inferSpec } from '../../src/core/permspec';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../src/core/safetensors';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import type { RebasinApi } from '../../src/extension/api';
import type { BarrierOutcome } from '../../src/extension/barrierCommand';
import { inWorkspace, nextEvent, writeTokenIds } from './fixtures';

const EXTENSION_ID = 'rebasin.rebasin';

function fixture(name: string): string {
  return path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures', 'hf', name);
}

/** A copy of the fixture folder (config.json + model.safetensors) in the workspace; returns its weights file. */
function copyFixture(name: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(fixture(name), f), path.join(dir, f));
  return path.join(dir, 'model.safetensors');
}

/**
 * B = A under a random element of its symmetry group (seeded), written with A's names in a folder
 * beside A with A's config.json. The experts are permuted on their stacked view and written back
 * one tensor per expert, as the hub names them.
 */
async function writePermuted(a: string, dir: string, seed: number): Promise<string> {
  const view = stackExperts(await openCheckpoint(a));
  try {
    const weights = new Map<string, DenseTensor>();
    for (const t of view.tensors) weights.set(t.name, { shape: t.shape, data: await view.readFloat32(t.name) });
    const { spec } = inferSpec(view.tensors, readHfConfig(a));
    const b = applyPermutations(spec, randomPermutations(spec, seed), weights);
    fs.mkdirSync(dir, { recursive: true });
    const sources = view.tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, byteLength: t.byteLength, read: async () => encodeFromFloat32('F32', b.get(t.name)!.data) }));
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensors(file, unstackSources(sources, view), { metadata: { format: 'pt' } });
    fs.copyFileSync(path.join(path.dirname(a), 'config.json'), path.join(dir, 'config.json'));
    return file;
  } finally {
    await view.close();
  }
}

/** N images 3×32×32 (x, float32) with labels 0..9 (y, int64) as safetensors, the classifiers' data layout. */
async function writeImages(file: string, n: number): Promise<string> {
  const size = 3 * 32 * 32;
  const x = Float32Array.from({ length: n * size }, (_, i) => Math.sin(i * 0.37));
  const y = new BigInt64Array(n).map((_, i) => BigInt(i % 10));
  await writeSafetensors(file, [
    { name: 'x', dtype: 'F32', shape: [n, 3, 32, 32], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
  ]);
  return file;
}

/** The aligned output's weights file (a file, or a folder holding model.safetensors). */
function weightsOf(out: string): string {
  return fs.statSync(out).isDirectory() ? path.join(out, 'model.safetensors') : out;
}

/** Every tensor of `want` is in `got` bit for bit; `got` has exactly `names`' tensors and shapes. */
async function assertSameTensors(got: string, want: string, names: string): Promise<void> {
  const [g, w, n] = await Promise.all([openCheckpoint(got), openCheckpoint(want), openCheckpoint(names)]);
  try {
    assert.deepEqual(g.tensors.map((t) => [t.name, t.shape]), n.tensors.map((t) => [t.name, t.shape]));
    for (const t of w.tensors) assert.deepEqual(await g.readRaw(t.name), await w.readRaw(t.name), `${t.name} is A's again`);
  } finally {
    await Promise.all([g, w, n].map((c) => c.close()));
  }
}

describe('Re-Basin extension: Mixtral and ViT', function () {
  let api: RebasinApi;

  before(async function () {
    const ext = vscode.extensions.getExtension<RebasinApi>(EXTENSION_ID);
    assert.ok(ext);
    api = await ext.activate();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(inWorkspace('families'), { recursive: true, force: true });
  });

  async function inspect(file: string) {
    const shown = nextEvent(api.onDidShowInspector, (s) => s.path === file, 60_000, `the inspector of ${file}`);
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'rebasin.inspector');
    const state = await shown;
    assert.equal(state.error, undefined);
    assert.ok(state.architecture, 'an architecture is recognised');
    return state.architecture;
  }

  async function alignAndCheck(a: string, b: string): Promise<AlignOutcome> {
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
      reference: vscode.Uri.file(a),
      method: 'weight',
      replace: true,
      data: null,
      openPanel: false,
    })) as AlignOutcome;
    assert.equal(outcome.written, true, outcome.reason);
    assert.equal(outcome.result.equivalence?.ok, true, JSON.stringify(outcome.result.equivalence));
    assert.equal(outcome.result.distance?.aligned, 0, 'π(B) is A');
    await assertSameTensors(weightsOf(outcome.out), a, b);
    return outcome;
  }

  type Barrier = BarrierOutcome['result'];
  /** Compute barrier… on the pair; the result has an aligned path. */
  async function barrier(a: string, b: string, data: string): Promise<Barrier & { aligned: NonNullable<Barrier['aligned']> }> {
    const outcome = (await vscode.commands.executeCommand('rebasin.computeBarrier', { a: vscode.Uri.file(a), b: vscode.Uri.file(b), data: vscode.Uri.file(data), openPanel: false })) as BarrierOutcome;
    const { aligned } = outcome.result;
    assert.ok(aligned, 'an aligned path');
    return { ...outcome.result, aligned };
  }

  describe('Mixtral (mixtral-tiny: 4 experts, top 2, 2 KV groups)', function () {
    let a: string;
    let b: string;
    let ids: string;

    before(async function () {
      a = copyFixture('mixtral-tiny', inWorkspace('families', 'mixtral-a'));
      b = await writePermuted(a, inWorkspace('families', 'mixtral-b'), 6);
      ids = writeTokenIds(inWorkspace('families', 'ids.npy'));
    });

    it('the inspector names Mixtral and describes each layer\'s experts and heads', async function () {
      const arch = await inspect(b);
      assert.match(arch.family, /Mixtral/);
      assert.equal(arch.perms['P_model.layers.0.experts'], 4);
      assert.equal(arch.attention?.length, 2);
      const l0 = arch.attention![0];
      assert.equal(l0.heads, 4);
      assert.equal(l0.kvGroups, 2);
      assert.equal(l0.summary, 'layer 0 attention: 2 KV groups × 2 query heads × 16 dims; query heads permute within each KV group; v/o dims permute within each KV group; q/k dims fixed (RoPE)');
      assert.deepEqual(arch.experts?.map((e) => e.summary), [
        'layer 0 MLP: 4 experts × 96 units, router top 2; experts permute as units, the units inside each expert',
        'layer 1 MLP: 4 experts × 96 units, router top 2; experts permute as units, the units inside each expert',
      ]);
      assert.deepEqual({ ...arch.experts![0] }, {
        layer: 'model.layers.0',
        label: 'layer 0',
        experts: 4,
        unitsPerExpert: 96,
        topK: 2,
        outer: 'P_model.layers.0.experts',
        units: 'P_model.layers.0.expert_mlp',
        summary: arch.experts![0].summary,
      });
    });

    it('Align with… recovers the known permutation: π(B) is A bit for bit', async function () {
      const outcome = await alignAndCheck(a, b);
      assert.ok(outcome.result.groups.some((g) => g.name === 'P_model.layers.1.experts' && g.moved > 0), 'experts moved');
    });

    it('the barrier on token ids is flat on the aligned path', async function () {
      const r = await barrier(a, b, ids);
      assert.equal(r.lm?.objective, 'causal');
      const a0 = r.naive.loss[0];
      for (const x of r.aligned.loss) assert.ok(Math.abs(x - a0) <= 1e-4 * Math.abs(a0), `aligned ${x} vs A ${a0}`);
      assert.ok(r.barrier.aligned !== undefined && Math.abs(r.barrier.aligned) <= 1e-4, `aligned barrier ${r.barrier.aligned}`);
    });
  });

  describe('ViT (vit-tiny: 4 heads of 16, images 3×32×32)', function () {
    let a: string;
    let b: string;
    let images: string;

    before(async function () {
      a = copyFixture('vit-tiny', inWorkspace('families', 'vit-a'));
      b = await writePermuted(a, inWorkspace('families', 'vit-b'), 5);
      images = await writeImages(inWorkspace('families', 'images.safetensors'), 24);
    });

    it('the inspector names ViT and shows the heads with their q/k and v/o permutations', async function () {
      const arch = await inspect(b);
      assert.match(arch.family, /ViT/);
      assert.equal(arch.attention?.length, 2);
      const l1 = arch.attention![1];
      assert.equal(l1.heads, 4);
      assert.equal(l1.headDim, 16);
      assert.equal(l1.kvGroups, undefined);
      assert.deepEqual(l1.inner.map((i) => [i.label, i.perm]), [['q/k', 'P_vit.encoder.layer.1.qk'], ['v/o', 'P_vit.encoder.layer.1.vo']]);
      assert.equal(l1.summary, 'layer 1 attention: 4 heads × 16 dims; q/k dims permute jointly within each head; v/o dims permute within each head');
      assert.equal(arch.experts, undefined, 'no experts');
    });

    it('Align with… recovers the known permutation: π(B) is A bit for bit', async function () {
      const outcome = await alignAndCheck(a, b);
      assert.ok(outcome.result.groups.some((g) => g.name === 'P_vit.encoder.layer.0.heads' && g.moved > 0), 'heads moved');
    });

    it('the barrier on images is flat on the aligned path, with accuracy', async function () {
      const r = await barrier(a, b, images);
      assert.equal(r.naive.acc?.length, r.lambdas.length);
      for (const x of r.aligned.loss) assert.ok(Math.abs(x - r.aligned.loss[0]) < 1e-5, `aligned ${r.aligned.loss}`);
      assert.ok(Math.abs(r.barrier.aligned ?? NaN) < 1e-5, `aligned barrier ${r.barrier.aligned}`);
    });
  });
});
