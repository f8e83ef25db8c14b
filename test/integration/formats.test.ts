// PyTorch and Flax checkpoints in the extension host (issue 22): the inspector opens a `.pt`, a
// `.bin`, a Lightning `.ckpt` and a Flax msgpack (with and without an extension) from their
// headers, and Align with… aligns a `.pt` pair: B a PyTorch zip written here (the tiny MLP of
// test/fixtures/formats with its hidden units permuted), A the fixture `mlp.pt`; π(B) is written
// as safetensors in the `.pt`'s tensor names and equals A bit for bit. Nothing in a file is run.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RebasinApi } from '../../src/extension/api';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import { openCheckpoint } from '../../src/core/safetensors';
import { stateDictPickle, torchZip, type TensorSpec } from '../unit/helpers/torchFiles';
import { inWorkspace, nextEvent } from './fixtures';

const EXTENSION_ID = 'rebasin.rebasin';

/** The extension under test is this repository: its fixtures sit under its own folder. */
function fixture(...parts: string[]): string {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is installed`);
  return path.join(ext.extensionPath, 'test', 'fixtures', 'formats', ...parts);
}

async function readAll(file: string): Promise<Map<string, { shape: readonly number[]; data: Float32Array }>> {
  const ckpt = await openCheckpoint(file);
  try {
    const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const t of ckpt.tensors) out.set(t.name, { shape: t.shape, data: await ckpt.readFloat32(t.name) });
    return out;
  } finally {
    await ckpt.close();
  }
}

/** `perm[i]` = the unit of A that B holds at i (a fixed shuffle, seeded by `shift`). */
function shuffle(n: number, shift: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * shift + 3) % n);
}

/** The MLP of `tensors` with hidden layers' units permuted, as a `torch.save` zip. */
function permutedTorchZip(tensors: Map<string, { shape: readonly number[]; data: Float32Array }>, perms: readonly number[][]): Uint8Array {
  const get = (name: string) => tensors.get(name)!;
  const rows = (t: { shape: readonly number[]; data: Float32Array }, p: readonly number[] | undefined, q: readonly number[] | undefined): Float32Array => {
    const [r, c] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
    const out = new Float32Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = t.data[(p ? p[i] : i) * c + (q ? q[j] : j)];
    return out;
  };
  const specs: TensorSpec[] = [];
  const storages = new Map<string, Uint8Array>();
  for (let layer = 0; layer < 3; layer++) {
    const out = perms[layer];
    const inp = layer > 0 ? perms[layer - 1] : undefined;
    for (const [suffix, data] of [
      ['weight', rows(get(`layers.${layer}.weight`), out, inp)],
      ['bias', rows(get(`layers.${layer}.bias`), out, undefined)],
    ] as const) {
      const name = `layers.${layer}.${suffix}`;
      const shape = get(name).shape;
      const key = String(specs.length);
      specs.push({ name, key, storage: 'FloatStorage', numel: data.length, offset: 0, shape, stride: shape.length === 2 ? [shape[1], 1] : [1] });
      storages.set(key, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return torchZip('mlp_b', stateDictPickle(specs), storages);
}

describe('PyTorch and Flax checkpoints in the extension', function () {
  let api: RebasinApi;
  const dir = inWorkspace('formats');

  before(async function () {
    const ext = vscode.extensions.getExtension<RebasinApi>(EXTENSION_ID);
    assert.ok(ext);
    api = await ext.activate();
    fs.mkdirSync(path.join(dir, 'flax-ckpt'), { recursive: true });
    for (const name of ['mlp.pt', 'mlp_lightning.ckpt', 'gpt2-tiny-pytorch_model.bin', 'mlp.msgpack', 'mlp.safetensors']) fs.copyFileSync(fixture(name), path.join(dir, name));
    fs.copyFileSync(fixture('flax-ckpt', 'checkpoint_100'), path.join(dir, 'flax-ckpt', 'checkpoint_100'));
  });

  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, format, tensors] of [
    ['mlp.pt', 'pytorch', 6],
    ['mlp_lightning.ckpt', 'pytorch', 6],
    ['gpt2-tiny-pytorch_model.bin', 'pytorch', undefined],
    ['mlp.msgpack', 'flax', 6],
    [path.join('flax-ckpt', 'checkpoint_100'), 'flax', 6],
  ] as const) {
    it(`opens ${name} in the inspector from its header`, async function () {
      const file = path.join(dir, name);
      const shown = nextEvent(api.onDidShowInspector, (s) => s.path === file, 60_000, `the inspector of ${name}`);
      await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'rebasin.inspector');
      const state = await shown;
      assert.equal(state.error, undefined, state.error);
      assert.equal(state.format, format);
      if (tensors !== undefined) assert.equal(state.tensors.length, tensors);
      else assert.ok(state.tensors.some((t) => t.name.endsWith('attn.c_attn.weight')), 'the GPT-2 tensors are listed');
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    });
  }

  it('aligns a permuted .pt to mlp.pt: π(B) is written as safetensors, equal to A bit for bit', async function () {
    this.timeout(120_000);
    const a = path.join(dir, 'mlp.pt');
    const reference = await readAll(path.join(dir, 'mlp.safetensors'));
    const b = path.join(dir, 'mlp_b.pt');
    fs.writeFileSync(b, permutedTorchZip(reference, [shuffle(32, 5), shuffle(24, 7), Array.from({ length: 10 }, (_, i) => i)]));
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
      reference: vscode.Uri.file(a),
      method: 'weight',
      replace: true,
      openPanel: false,
      data: null,
    })) as AlignOutcome;
    assert.ok(outcome.written, outcome.reason);
    assert.ok(outcome.result.groups.some((g) => g.moved > 0), 'units moved');
    const aligned = await readAll(outcome.out);
    assert.deepEqual([...aligned.keys()].sort(), [...reference.keys()].sort(), "the .pt's tensor names");
    for (const [name, t] of reference) assert.deepEqual(aligned.get(name)!.data, t.data, `${name} equals A's`);
  });
});
