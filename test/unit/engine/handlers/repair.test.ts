/**
 * REPAIR (compute/repair.ts, Jordan et al. 2022): after the correction, each hidden unit's
 * pre-activation mean and standard deviation in the interpolated MLP equal the interpolation of
 * the endpoints' (checked in float64 on the repaired weights); at lambda = 0 the network is A's
 * function; and on two MLPs trained on MNIST from different seeds, `--repair` lowers the barrier
 * of the naive and of the weight-matched path (evaluatePath with `repair`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { loadDataset, mnistDataDir } from '../../../../src/core/data';
import { interpolate } from '../../../../src/core/matching/merge';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { trainMlp } from '../../../../src/engine/compute';
import { repairInterpolated, unitStats } from '../../../../src/engine/compute/repair';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { evaluatePathHandler } from '../../../../src/engine/handlers/evaluatePath';
import { saveTensors } from '../../../../src/engine/handlers/train';
import { tfMatMul } from '../../../../src/engine/tfMatMul';
import { testBackend } from '../../helpers/backend';
import { seededRandom } from '../../helpers/stateDicts';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend(testBackend());
  tmp = await makeTmpDir('rebasin-repair-');
});
after(() => tmp.remove());

function randomMlp(widths: number[], seed: number): Map<string, DenseTensor> {
  const r = seededRandom(seed);
  const m = new Map<string, DenseTensor>();
  for (let i = 0; i + 1 < widths.length; i++) {
    const [inp, out] = [widths[i], widths[i + 1]];
    const s = Math.sqrt(3 / inp);
    m.set(`layers.${i}.weight`, { shape: [out, inp], data: Float32Array.from({ length: out * inp }, () => (2 * r() - 1) * s) });
    m.set(`layers.${i}.bias`, { shape: [out], data: Float32Array.from({ length: out }, () => 2 * r() - 1) });
  }
  return m;
}

/** Per-unit pre-activation mean and (population) std of each hidden layer, in float64. */
function referenceStats(t: TensorMap, x: Float64Array[], layers: number): { mean: number[]; std: number[] }[] {
  let h = x;
  const out: { mean: number[]; std: number[] }[] = [];
  for (let l = 0; l < layers; l++) {
    const w = t.get(`layers.${l}.weight`)!;
    const b = t.get(`layers.${l}.bias`)!;
    const [units, inp] = w.shape;
    const pre = h.map((row) => Float64Array.from({ length: units }, (_, i) => {
      let s = b.data[i];
      for (let k = 0; k < inp; k++) s += w.data[i * inp + k] * row[k];
      return s;
    }));
    const mean = Array.from({ length: units }, (_, i) => pre.reduce((s, r) => s + r[i], 0) / pre.length);
    const std = mean.map((m, i) => Math.sqrt(pre.reduce((s, r) => s + (r[i] - m) ** 2, 0) / pre.length));
    out.push({ mean, std });
    h = pre.map((r) => r.map((v) => Math.max(0, v)));
  }
  return out;
}

test('REPAIR sets each hidden unit to the interpolated endpoint statistics, layer after layer', async () => {
  const widths = [6, 12, 10, 3];
  const a = randomMlp(widths, 1);
  const b = randomMlp(widths, 2);
  const r = seededRandom(3);
  const rows = Array.from({ length: 200 }, () => Float64Array.from({ length: widths[0] }, () => 2 * r() - 1));
  const x = tf.tensor2d(rows.map((row) => Array.from(row)));
  try {
    const sa = await unitStats(a, x, 'relu');
    const sb = await unitStats(b, x, 'relu');
    const refA = referenceStats(a, rows, 2);
    const refB = referenceStats(b, rows, 2);
    for (const lambda of [0, 0.3, 0.5, 1]) {
      const repaired = await repairInterpolated(interpolate(a, b, lambda), lambda, sa, sb, x, 'relu');
      const got = referenceStats(repaired, rows, 2);
      for (let l = 0; l < 2; l++) {
        got[l].mean.forEach((m, i) => {
          const want = (1 - lambda) * refA[l].mean[i] + lambda * refB[l].mean[i];
          assert.ok(Math.abs(m - want) < 1e-3 * Math.max(1, Math.abs(want)), `λ ${lambda} layer ${l} unit ${i}: mean ${m} vs ${want}`);
        });
        got[l].std.forEach((s, i) => {
          const want = (1 - lambda) * refA[l].std[i] + lambda * refB[l].std[i];
          assert.ok(Math.abs(s - want) < 1e-3 * Math.max(1, want), `λ ${lambda} layer ${l} unit ${i}: std ${s} vs ${want}`);
        });
      }
      if (lambda === 0) {
        // At A the statistics are A's own: the repaired network is A.
        for (const [name, t] of a) t.data.forEach((v, i) => assert.ok(Math.abs(repaired.get(name)!.data[i] - v) < 1e-4 * Math.max(1, Math.abs(v)), name));
      }
    }
  } finally {
    x.dispose();
  }
});

test('--repair lowers the barrier of two MNIST MLPs, naive and weight-matched', async () => {
  const train = await loadDataset({ path: mnistDataDir(), limit: 5000 }, 'train');
  const opts = { widths: [784, 128, 128, 10], epochs: 1, batchSize: 100, learningRate: 1e-3 };
  const a = (await trainMlp(train, { ...opts, seed: 1 })).tensors;
  const b = (await trainMlp(train, { ...opts, seed: 2 })).tensors;
  await saveTensors(tmp.file('a.safetensors'), a, { format: 'pt' });
  await saveTensors(tmp.file('b.safetensors'), b, { format: 'pt' });
  const spec = inferSpec([...a].map(([name, t]) => ({ name, shape: [...t.shape] }))).spec;
  const wm = await weightMatching(spec, a, b, { seed: 0, maxIter: 100, matmul: tfMatMul });
  const perms = Object.fromEntries(Object.entries(wm.perms).map(([k, v]) => [k, Array.from(v)]));
  const lambdas = [0, 0.25, 0.5, 0.75, 1];
  const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
  const curve = async (aligned: boolean, repair: boolean) =>
    evaluatePathHandler({ kind: 'evaluatePath', a: tmp.file('a.safetensors'), b: tmp.file('b.safetensors'), ...(aligned ? { perms } : {}), lambdas, data: { path: mnistDataDir(), limit: 2000 }, ...(repair ? { repair } : {}) }, ctx);
  const barrier = (loss: number[]): number => Math.max(...loss.map((l, i) => l - ((1 - lambdas[i]) * loss[0] + lambdas[i] * loss[4])));
  const results: Record<string, number> = {};
  for (const aligned of [false, true]) {
    const plain = await curve(aligned, false);
    const repaired = await curve(aligned, true);
    assert.equal(repaired.plan?.repair?.split, 'train');
    assert.equal(repaired.plan?.repair?.examples, 5000);
    // The endpoints are the trained models themselves.
    assert.ok(Math.abs(repaired.loss[0] - plain.loss[0]) < 1e-3 && Math.abs(repaired.loss[4] - plain.loss[4]) < 1e-3, `endpoints ${plain.loss} vs ${repaired.loss}`);
    const [p, r] = [barrier(plain.loss), barrier(repaired.loss)];
    results[aligned ? 'aligned' : 'naive'] = p;
    results[aligned ? 'aligned+repair' : 'naive+repair'] = r;
    assert.ok(r < p, `${aligned ? 'aligned' : 'naive'} path: barrier ${p} without REPAIR, ${r} with it`);
  }
  console.log(`REPAIR on MNIST MLPs 784-128-128-10 (1 epoch on 5k, 2k test images): ${JSON.stringify(results)}`);
});
