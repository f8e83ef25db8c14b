import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor, PermSpec } from '../../../../src/core/checkpoint';
import { MatchingError } from '../../../../src/core/matching/errors';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { interpolate, mergeMany } from '../../../../src/core/matching/merge';
import { applyPermutations, objective, randomPermutations } from '../../../../src/core/matching/permute';
import { mulberry32 } from '../../../../src/core/matching/prng';

const spec: PermSpec = {
  perms: { P0: 16, P1: 12 },
  axes: {
    'layers.0.weight': ['P0', null], 'layers.0.bias': ['P0'],
    'layers.1.weight': ['P1', 'P0'], 'layers.1.bias': ['P1'],
    'layers.2.weight': [null, 'P1'], 'layers.2.bias': [null],
  },
};

function tensor(shape: number[], r: () => number): DenseTensor {
  const size = shape.reduce((p, s) => p * s, 1);
  return { shape, data: new Float32Array(size).map(() => r() * 2 - 1) };
}

function model(seed: number): Map<string, DenseTensor> {
  const r = mulberry32(seed);
  return new Map([
    ['layers.0.weight', tensor([16, 10], r)], ['layers.0.bias', tensor([16], r)],
    ['layers.1.weight', tensor([12, 16], r)], ['layers.1.bias', tensor([12], r)],
    ['layers.2.weight', tensor([3, 12], r)], ['layers.2.bias', tensor([3], r)],
    ['step', { shape: [1], data: new Float32Array([seed]) }],
  ]);
}

test('interpolate: lambda 0 gives A, 1 gives B, 0.5 the mean', () => {
  const a = model(1);
  const b = model(2);
  const at0 = interpolate(a, b, 0);
  const at1 = interpolate(a, b, 1);
  const mid = interpolate(a, b, 0.5);
  for (const [name, t] of a) {
    assert.deepEqual(at0.get(name)!.data, t.data);
    assert.deepEqual(at1.get(name)!.data, b.get(name)!.data);
    assert.deepEqual(at0.get(name)!.shape, t.shape);
    const m = mid.get(name)!.data;
    for (let i = 0; i < m.length; i++) assert.ok(Math.abs(m[i] - (t.data[i] + b.get(name)!.data[i]) / 2) < 1e-6);
  }
  assert.equal(at0.get('step')!.data[0], 1);
});

test('interpolate rejects missing tensors, shape mismatches and non-finite lambda', () => {
  const a = model(1);
  const b = model(2);
  b.delete('layers.2.bias');
  assert.throws(() => interpolate(a, b, 0.5), (e: unknown) => e instanceof MatchingError && e.kind === 'MissingTensor');
  const c = model(2);
  c.set('layers.2.bias', { shape: [4], data: new Float32Array(4) });
  assert.throws(() => interpolate(a, c, 0.5), (e: unknown) => e instanceof MatchingError && e.kind === 'ShapeMismatch');
  assert.throws(() => interpolate(a, model(2), NaN), (e: unknown) => e instanceof MatchingError && e.kind === 'BadArgument');
});

test('mergeMany of permuted copies of one model returns that model up to permutation', async () => {
  const base = model(5);
  const copies = [base, ...[11, 12, 13].map((s) => applyPermutations(spec, randomPermutations(spec, s), base))];
  const res = await mergeMany(spec, copies, { seed: 0, maxIter: 20, matmul: jsMatMul });
  assert.equal(res.perms.length, 4);
  assert.ok(res.iterations >= 2);
  // Every aligned copy is the same network, and the merged model equals it.
  const reference = applyPermutations(spec, res.perms[0], copies[0]);
  copies.forEach((m, k) => {
    const aligned = applyPermutations(spec, res.perms[k], m);
    for (const name of Object.keys(spec.axes)) assert.deepEqual(aligned.get(name)!.data, reference.get(name)!.data, `model ${k} ${name}`);
  });
  for (const name of Object.keys(spec.axes)) {
    const got = res.merged.get(name)!.data;
    const want = reference.get(name)!.data;
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6, name);
  }
  // Expressed in model 0's order, the merged model is the base itself.
  for (const p of Object.keys(spec.perms)) assert.deepEqual(Array.from(res.perms[0][p]), Array.from({ length: spec.perms[p] }, (_, i) => i));
  for (const [name, t] of base) {
    const got = res.merged.get(name)!.data;
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - t.data[i]) < 1e-6, name);
  }
  const nn = objective(spec, base, base);
  assert.ok(Math.abs(objective(spec, res.merged, res.merged) - nn) < 1e-4 * nn);
  // Tensors outside the spec are averaged as they are.
  assert.ok(Math.abs(res.merged.get('step')!.data[0] - 5) < 1e-6);
});

test('mergeMany of independent models: deterministic, mean of the aligned models', async () => {
  const models = [model(21), model(22), model(23)];
  const r1 = await mergeMany(spec, models, { seed: 4, maxIter: 10, matmul: jsMatMul });
  const r2 = await mergeMany(spec, models, { seed: 4, maxIter: 10, matmul: jsMatMul });
  r1.perms.forEach((p, k) => { for (const name of Object.keys(p)) assert.deepEqual(p[name], r2.perms[k][name]); });
  const aligned = models.map((m, k) => applyPermutations(spec, r1.perms[k], m));
  for (const name of Object.keys(spec.axes)) {
    const got = r1.merged.get(name)!.data;
    for (let i = 0; i < got.length; i++) {
      const mean = aligned.reduce((s, m) => s + m.get(name)!.data[i], 0) / 3;
      assert.ok(Math.abs(got[i] - mean) < 1e-5);
    }
  }
  assert.ok(Math.abs(r1.merged.get('step')!.data[0] - 22) < 1e-5);
  await assert.rejects(mergeMany(spec, [models[0]], { seed: 0, maxIter: 1, matmul: jsMatMul }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'BadArgument');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(mergeMany(spec, models, { seed: 0, maxIter: 3, matmul: jsMatMul, signal: ac.signal }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'Cancelled');
});
