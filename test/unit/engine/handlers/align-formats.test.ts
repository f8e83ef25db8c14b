/**
 * Aligning and merging PyTorch and Flax pairs reaches what the safetensors pair reaches: A is the
 * tiny MLP fixture (test/fixtures/formats: mlp.safetensors, mlp.pt, mlp.msgpack, the same values),
 * B a known permutation of it with a small perturbation, written here as safetensors, as a
 * `torch.save` zip and as a Flax TrainState msgpack. Outputs are safetensors in the input's names
 * and layouts (Flax kernels stay [in, out]).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Checkpoint, DenseTensor } from '../../../../src/core/checkpoint';
import { detectFileFormat, openCheckpoint } from '../../../../src/core/formats';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { encodeFromFloat32, writeSafetensors } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { mergeHandler } from '../../../../src/engine/handlers/merge';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { flaxArray, msgpack, stateDictPickle, torchZip, type MsgIn, type TensorSpec } from '../../helpers/torchFiles';

const FORMATS = path.join(__dirname, '..', '..', '..', 'fixtures', 'formats');
const A = { safetensors: path.join(FORMATS, 'mlp.safetensors'), pt: path.join(FORMATS, 'mlp.pt'), msgpack: path.join(FORMATS, 'mlp.msgpack') };

let tmp: TmpDir;
const B = { safetensors: '', pt: '', msgpack: '' };
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-align-formats-');
  const ck = await openCheckpoint(A.safetensors);
  const ta = new Map<string, DenseTensor>();
  try {
    for (const t of ck.tensors) ta.set(t.name, { shape: [...t.shape], data: await ck.readFloat32(t.name) });
  } finally {
    await ck.close();
  }
  const spec = inferSpec(ck.tensors).spec;
  const tb = applyPermutations(spec, randomPermutations(spec, 7), ta);
  for (const t of tb.values()) t.data.forEach((x, i) => (t.data[i] = x + 0.01 * Math.sin(i * 12.9898)));
  B.safetensors = tmp.file('b.safetensors');
  await writeSafetensors(B.safetensors, [...tb].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })));
  // torch.save layout: one storage per tensor, keys 0..n-1.
  const specs: TensorSpec[] = [];
  const storages = new Map<string, Uint8Array>();
  [...tb].forEach(([name, t], i) => {
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((p, x) => p * x, 1));
    specs.push({ name, key: String(i), storage: 'FloatStorage', numel: t.data.length, offset: 0, shape: t.shape, stride });
    storages.set(String(i), encodeFromFloat32('F32', t.data));
  });
  B.pt = tmp.file('b.pt');
  await writeFile(B.pt, torchZip('b', stateDictPickle(specs), storages));
  // Flax: Dense_i/kernel is weight transposed, inside a TrainState with an opt_state to ignore.
  const params: Record<string, MsgIn> = {};
  for (let i = 0; i < 3; i++) {
    const w = tb.get(`layers.${i}.weight`)!;
    const [out, inp] = w.shape;
    const kernel = new Float32Array(out * inp);
    for (let r = 0; r < out; r++) for (let c = 0; c < inp; c++) kernel[c * out + r] = w.data[r * inp + c];
    params[`Dense_${i}`] = { kernel: flaxArray([inp, out], 'float32', encodeFromFloat32('F32', kernel)), bias: flaxArray([out], 'float32', encodeFromFloat32('F32', tb.get(`layers.${i}.bias`)!.data)) };
  }
  B.msgpack = tmp.file('b.msgpack');
  await writeFile(B.msgpack, msgpack({ step: 3, params: { params }, opt_state: { '0': { count: 1 } } }));
});
after(() => tmp.remove());

const ctx = (): HandlerContext => ({ signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined });

async function names(file: string): Promise<Map<string, readonly number[]>> {
  const c: Checkpoint = await openCheckpoint(file);
  try {
    return new Map(c.tensors.map((t) => [t.name, t.shape]));
  } finally {
    await c.close();
  }
}

describe('align and merge across formats', () => {
  it('the .pt pair and the msgpack pair reach the safetensors pair\'s objective and permutations; outputs are safetensors in the input\'s names and layouts', async () => {
    const results = [];
    for (const kind of ['safetensors', 'pt', 'msgpack'] as const) {
      const out = tmp.file(`aligned-${kind}.safetensors`);
      const r = await alignHandler({ kind: 'align', a: A[kind], b: B[kind], out, method: 'weight', seed: 0, maxIter: 50 }, ctx());
      assert.equal(await detectFileFormat(out), 'safetensors');
      assert.deepEqual(await names(out), await names(B[kind]), `${kind}: output names and shapes are the input's`);
      results.push(r);
    }
    const [st, pt, mp] = results;
    assert.ok(st.objectiveAfter > st.objectiveBefore, 'alignment improves the objective');
    assert.equal(pt.objectiveAfter, st.objectiveAfter);
    assert.deepEqual(pt.perms, st.perms);
    assert.ok(Math.abs(mp.objectiveAfter - st.objectiveAfter) <= 1e-6 * Math.abs(st.objectiveAfter), `msgpack ${mp.objectiveAfter} vs ${st.objectiveAfter}`);
    // Flax permutations are named after Flax's modules; same units in the same order.
    assert.deepEqual(Object.values(mp.perms), Object.values(st.perms));
  });

  it('merging the .pt pair writes the same bytes as merging the safetensors pair', async () => {
    const outs: Buffer[] = [];
    for (const kind of ['safetensors', 'pt'] as const) {
      const out = tmp.file(`merged-${kind}.safetensors`);
      await mergeHandler({ kind: 'merge', inputs: [A[kind], B[kind]], out, lambda: 0.5, align: true, seed: 0, maxIter: 50 }, ctx());
      const c = await openCheckpoint(out);
      try {
        outs.push(Buffer.concat(await Promise.all(c.tensors.map(async (t) => Buffer.from(await c.readRaw(t.name))))));
      } finally {
        await c.close();
      }
    }
    assert.ok(outs[0].equals(outs[1]));
  });
});
