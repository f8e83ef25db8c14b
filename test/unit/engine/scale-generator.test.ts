/**
 * The synthetic Llama-pair generator of the scale bench (bench/scale/generate.ts) at tiny size:
 * a Hugging Face sharded BF16 layout our readers open, B a true symmetry of A (the LM forward
 * pass gives the same logits, so heads, KV groups, MLPs and the residual stream were permuted
 * consistently, and never inside a head), and weight matching undoes the residual and MLP
 * permutations exactly (heads are matched by another change: left unpermuted here).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openCheckpoint } from '../../../src/core/safetensors';
import { initBackend } from '../../../src/engine/backend';
import { alignHandler } from '../../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../../src/engine/lm/checkpoint';
import { buildLm } from '../../../src/engine/lm/model';
import { generateLlamaPair, parameterCount, PRESETS } from '../../../bench/scale/generate';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-scale-');
});
after(() => tmp.remove());

async function logits(dir: string, ids: Int32Array, shape: [number, number]): Promise<Float32Array> {
  const lm = await loadLmCheckpoint(dir);
  const model = buildLm(lm.tensors, lm.config, lm.paths.weights);
  try {
    return tf.tidy(() => model.logits(tf.tensor2d(ids, shape, 'int32')).dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

async function raw(weights: string): Promise<Map<string, Uint8Array>> {
  const ck = await openCheckpoint(weights);
  try {
    const out = new Map<string, Uint8Array>();
    for (const t of ck.tensors) out.set(t.name, (await ck.readRaw(t.name)).slice());
    return out;
  } finally {
    await ck.close();
  }
}

describe('synthetic Llama pairs', () => {
  it('writes sharded BF16 folders with config.json; B = a permutation of A over residual, MLPs, KV groups and heads, with the same logits', async () => {
    const dir = tmp.file('full');
    const r = await generateLlamaPair({ shape: PRESETS.tiny, dir, seed: 3, maxShardBytes: 8 * 1024 });
    for (const side of [r.a, r.b]) {
      const files = await readdir(side);
      assert.ok(files.includes('config.json') && files.includes('model.safetensors.index.json'));
      assert.ok(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length > 1, 'sharded');
    }
    const a = await raw(path.join(r.a, 'model.safetensors.index.json'));
    const b = await raw(path.join(r.b, 'model.safetensors.index.json'));
    assert.equal([...a.values()].reduce((s, x) => s + x.length, 0), 2 * parameterCount(PRESETS.tiny));
    const ck = await openCheckpoint(path.join(r.a, 'model.safetensors.index.json'));
    assert.ok(ck.tensors.every((t) => t.dtype === 'BF16'));
    await ck.close();
    // Every permuted tensor differs, and every group was really permuted.
    assert.ok([...a.keys()].every((k) => !Buffer.from(a.get(k)!).equals(Buffer.from(b.get(k)!))));
    const saved = JSON.parse(await readFile(r.permutationFile, 'utf8')) as { kvGroups: number[][]; queryHeads: number[][] };
    assert.ok(saved.kvGroups.some((p) => p.some((v, i) => v !== i)) && saved.queryHeads.some((p) => p.some((v, i) => v !== i)));
    const ids = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 7 + 3) % PRESETS.tiny.vocab);
    const la = await logits(r.a, ids, [2, 12]);
    const lb = await logits(r.b, ids, [2, 12]);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < la.length; i++) {
      worst = Math.max(worst, Math.abs(la[i] - lb[i]));
      scale = Math.max(scale, Math.abs(la[i]));
    }
    assert.ok(scale > 0.1, 'logits are not trivially small');
    assert.ok(worst < 1e-4 * Math.max(1, scale), `largest logit difference ${worst} (logits up to ${scale})`);
  });

  it('weight matching recovers the residual and MLP permutations exactly (heads not permuted)', async () => {
    const dir = tmp.file('nohead');
    const r = await generateLlamaPair({ shape: PRESETS.tiny, dir, seed: 5, permute: { heads: false } });
    const out = tmp.file('aligned');
    await alignHandler({ kind: 'align', a: r.a, b: r.b, out, method: 'weight', seed: 0, maxIter: 50 }, { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined });
    const a = await raw(path.join(r.a, 'model.safetensors.index.json'));
    const aligned = await raw(path.join(out, 'model.safetensors.index.json'));
    for (const [name, bytes] of a) assert.ok(Buffer.from(bytes).equals(Buffer.from(aligned.get(name)!)), `${name} equals A's`);
  });
});
