import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DenseTensor, MatMulABt, PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { MatchingError } from '../../../../src/core/matching/errors';
import { MemoryBudgetError } from '../../../../src/core/memoryBudget';
import { planWeightMatching } from '../../../../src/core/memoryPlan';
import { jsMatMul, matMulABt } from '../../../../src/core/matching/jsMatMul';
import {
  applyPermutations, composePermutations, identityPermutations, invertPermutation, objective,
  permuteTensor, permutedDot, randomPermutations,
} from '../../../../src/core/matching/permute';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { similarityMatrix, similarityMatrixWith, weightMatching } from '../../../../src/core/matching/weightMatching';

const IN = 12, H0 = 24, H1 = 20, OUT = 5;

/** MLP in PyTorch naming: layers.{0,1,2}.weight [out, in] and .bias; P0, P1 on the hidden units. */
const mlpSpec: PermSpec = {
  perms: { P0: H0, P1: H1 },
  axes: {
    'layers.0.weight': ['P0', null], 'layers.0.bias': ['P0'],
    'layers.1.weight': ['P1', 'P0'], 'layers.1.bias': ['P1'],
    'layers.2.weight': [null, 'P1'], 'layers.2.bias': [null],
  },
};

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function tensor(shape: number[], r: () => number): DenseTensor {
  const size = shape.reduce((p, s) => p * s, 1);
  return { shape, data: new Float32Array(size).map(() => gaussian(r)) };
}

function randomMlp(seed: number): Map<string, DenseTensor> {
  const r = mulberry32(seed);
  return new Map([
    ['layers.0.weight', tensor([H0, IN], r)], ['layers.0.bias', tensor([H0], r)],
    ['layers.1.weight', tensor([H1, H0], r)], ['layers.1.bias', tensor([H1], r)],
    ['layers.2.weight', tensor([OUT, H1], r)], ['layers.2.bias', tensor([OUT], r)],
  ]);
}

/** Plain forward pass: ReLU after the hidden layers. */
function forward(m: TensorMap, x: Float32Array): Float64Array {
  let h: Float64Array = Float64Array.from(x);
  for (let l = 0; l < 3; l++) {
    const w = m.get(`layers.${l}.weight`)!;
    const b = m.get(`layers.${l}.bias`)!;
    const [rows, cols] = w.shape;
    const y = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let s = b.data[i];
      for (let j = 0; j < cols; j++) s += w.data[i * cols + j] * h[j];
      y[i] = l < 2 ? Math.max(0, s) : s;
    }
    h = y;
  }
  return h;
}

test('permuting by the spec keeps the network function', () => {
  const model = randomMlp(1);
  const permuted = applyPermutations(mlpSpec, randomPermutations(mlpSpec, 5), model);
  const r = mulberry32(9);
  for (let t = 0; t < 5; t++) {
    const x = new Float32Array(IN).map(() => gaussian(r));
    const y0 = forward(model, x);
    const y1 = forward(permuted, x);
    for (let i = 0; i < OUT; i++) assert.ok(Math.abs(y0[i] - y1[i]) < 1e-9);
  }
});

test('weight matching recovers an applied permutation exactly (perm = inverse of the applied one)', async () => {
  const a = randomMlp(2);
  const applied = randomPermutations(mlpSpec, 11);
  const b = applyPermutations(mlpSpec, applied, a);
  const res = await weightMatching(mlpSpec, a, b, { seed: 0, maxIter: 100, matmul: jsMatMul });
  for (const p of ['P0', 'P1']) assert.deepEqual(Array.from(res.perms[p]), Array.from(invertPermutation(applied[p])));
  const aa = objective(mlpSpec, a, a);
  assert.ok(Math.abs(res.objectiveAfter + res.objectiveFixed - aa) < 1e-6 * aa, `${res.objectiveAfter} + ${res.objectiveFixed} vs ${aa}`);
  assert.ok(res.objectiveBefore < res.objectiveAfter);
  const aligned = applyPermutations(mlpSpec, res.perms, b);
  for (const [name, t] of a) assert.deepEqual(aligned.get(name)!.data, t.data, name);
  // pi(B) computes B's function.
  const x = new Float32Array(IN).map((_, i) => Math.sin(i));
  const yb = forward(b, x);
  const ya = forward(aligned, x);
  for (let i = 0; i < OUT; i++) assert.ok(Math.abs(yb[i] - ya[i]) < 1e-9);
  const g0 = res.groups.find((g) => g.name === 'P0')!;
  assert.equal(g0.size, H0);
  assert.equal(g0.moved, Array.from(res.perms.P0).filter((v, i) => v !== i).length);
  // P0 acts on layers.0.weight/bias and axis 1 of layers.1.weight.
  const share = ['layers.0.weight', 'layers.0.bias', 'layers.1.weight']
    .reduce((s, n) => s + objective({ perms: {}, axes: { [n]: [] } }, a, a), 0);
  assert.ok(Math.abs(g0.objectiveAfter - share) < 1e-6 * share);
});

test('the objective counts the tensors a permutation acts on; the ones none touches are reported apart', async () => {
  // A BatchNorm counter as torchvision stores it: <A, B> of two counters of ~6,400 steps is ~41
  // million, beside a matchable objective of a few hundred; summed in, it hid the gain.
  const spec: PermSpec = { perms: mlpSpec.perms, axes: { ...mlpSpec.axes, 'bn.num_batches_tracked': [] } };
  const withCounter = (m: Map<string, DenseTensor>, steps: number): Map<string, DenseTensor> =>
    new Map([...m, ['bn.num_batches_tracked', { shape: [], data: Float32Array.of(steps) }]]);
  const a = withCounter(randomMlp(3), 6434);
  const b = withCounter(randomMlp(4), 6434);
  const r = await weightMatching(spec, a, b, { seed: 7, maxIter: 50, matmul: jsMatMul });
  const fixedTensors = ['layers.2.bias', 'bn.num_batches_tracked'];
  const permuted = Object.keys(spec.axes).filter((t) => !fixedTensors.includes(t));
  const part = (names: string[], bb: TensorMap): number => objective({ perms: {}, axes: Object.fromEntries(names.map((n) => [n, []])) }, a, bb);
  const aligned = applyPermutations(spec, r.perms, b);
  assert.ok(Math.abs(r.objectiveBefore - part(permuted, b)) <= 1e-9 * Math.abs(part(permuted, b)), `${r.objectiveBefore}`);
  assert.ok(Math.abs(r.objectiveAfter - part(permuted, aligned)) <= 1e-9 * Math.abs(part(permuted, aligned)), `${r.objectiveAfter}`);
  assert.equal(r.objectiveFixed, part(fixedTensors, b));
  assert.ok(r.objectiveFixed > 4e7, 'the counter is in the fixed part');
  assert.ok(r.objectiveAfter < 1e4, `the counter is out of the reported objective: ${r.objectiveAfter}`);
});

test('weight matching of independent models: deterministic for a seed, improves the objective, cache-neutral', async () => {
  const a = randomMlp(3);
  const b = randomMlp(4);
  const run = (seed: number, cacheBytes?: number) =>
    weightMatching(mlpSpec, a, b, { seed, maxIter: 50, matmul: jsMatMul, cacheBytes });
  const r1 = await run(7);
  const r2 = await run(7);
  const r3 = await run(7, 0);
  for (const p of ['P0', 'P1']) {
    assert.deepEqual(r1.perms[p], r2.perms[p]);
    assert.deepEqual(r1.perms[p], r3.perms[p]);
  }
  assert.equal(r1.objectiveAfter, r2.objectiveAfter);
  assert.ok(r1.objectiveAfter > r1.objectiveBefore);
  assert.ok(r1.iterations >= 1 && r1.iterations <= 50);
  const check = objective(mlpSpec, a, applyPermutations(mlpSpec, r1.perms, b));
  assert.ok(Math.abs(check - r1.objectiveAfter - r1.objectiveFixed) < 1e-9 * Math.abs(check));
  // At the fixed point no single permutation can be improved with the others held.
  const again = await weightMatching(mlpSpec, a, b, { seed: 99, maxIter: 50, matmul: jsMatMul, initPerms: r1.perms });
  assert.equal(again.iterations, 1);
  assert.ok(Math.abs(again.objectiveAfter - r1.objectiveAfter) < 1e-9 * Math.abs(check));
});

test('cached products are reused: fewer matmuls than occurrences x solves', async () => {
  const a = randomMlp(5);
  const b = randomMlp(6);
  let calls = 0;
  const counting: MatMulABt = { abT: (x, y, m, k, n) => { calls++; return matMulABt(x, y, m, k, n); } };
  const res = await weightMatching(mlpSpec, a, b, { seed: 1, maxIter: 50, matmul: counting });
  // 3 occurrences per permutation, one solve per permutation per sweep.
  const naive = 3 * 2 * res.iterations;
  assert.ok(res.iterations >= 2);
  assert.ok(calls < naive, `${calls} matmuls vs ${naive} without caching`);
});

test('cancellation: an aborted signal stops between solves with kind Cancelled', async () => {
  const a = randomMlp(7);
  const b = randomMlp(8);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(weightMatching(mlpSpec, a, b, { seed: 0, maxIter: 10, matmul: jsMatMul, signal: pre.signal }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'Cancelled');
  const mid = new AbortController();
  let calls = 0;
  const aborting: MatMulABt = { abT: async (x, y, m, k, n) => { if (++calls === 2) mid.abort(); return matMulABt(x, y, m, k, n); } };
  await assert.rejects(weightMatching(mlpSpec, a, b, { seed: 0, maxIter: 10, matmul: aborting, signal: mid.signal }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'Cancelled');
  assert.ok(calls <= 4, `stopped after ${calls} products`);
});

test('progress reports every sweep in the user\'s terms, with a rising fraction that ends at 1', async () => {
  const stages: number[] = [];
  const fractions: number[] = [];
  const res = await weightMatching(mlpSpec, randomMlp(1), randomMlp(2), {
    seed: 3, maxIter: 20, matmul: jsMatMul, onProgress: (p) => {
      assert.equal(p.stage, 'weight-matching');
      assert.match(p.message!, /^Weight matching: sweep \d+, \d+ of 2 permutations(, converged|, last sweep)?(; P\d \(\d+ units\): (\d+ of \d+ products(, .* left for them)?|assignment, (first passes|[\d,]+ of [\d,]+ rows)(, .* left for it)?))?$/);
      fractions.push(p.fraction!);
      if (/2 of 2 permutations/.test(p.message!)) stages.push(p.iteration!);
    },
  });
  assert.deepEqual(stages, Array.from({ length: res.iterations }, (_, i) => i + 1));
  assert.ok(fractions.every((f, i) => f > 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])), `fractions ${fractions}`);
  assert.equal(fractions.at(-1), 1);
});

test('progress names the permutation being solved, its products with their time left, and the assignment\'s rows', async () => {
  // A clock that moves 2 s per reading: every product is reported, and the group's rate is known.
  let t = 0;
  const messages: string[] = [];
  const fractions: number[] = [];
  await weightMatching(mlpSpec, randomMlp(1), randomMlp(2), {
    seed: 3, maxIter: 20, matmul: jsMatMul, clock: () => (t += 2000), onProgress: (p) => {
      messages.push(p.message!);
      fractions.push(p.fraction!);
    },
  });
  const detail = messages.filter((m) => /; P\d \(\d+ units\): /.test(m));
  assert.ok(detail.some((m) => /: 1 of [23] products/.test(m)), messages.join('\n'));
  assert.ok(detail.some((m) => /: assignment, \d+ of \d+ rows/.test(m)), messages.join('\n'));
  // The products' estimate is theirs: the assignment's comes from its own rows (core/assignment/lap.ts).
  assert.ok(detail.some((m) => /products, (about \d+ s|a few seconds) left for them$/.test(m)), messages.join('\n'));
  assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]), `fractions ${fractions}`);
});

test('similarity matrix: diagonal maxima after aligning a permuted copy', async () => {
  const a = randomMlp(10);
  const b = applyPermutations(mlpSpec, randomPermutations(mlpSpec, 12), a);
  const res = await weightMatching(mlpSpec, a, b, { seed: 0, maxIter: 10, matmul: jsMatMul });
  for (const p of ['P0', 'P1']) {
    const n = mlpSpec.perms[p];
    const s = similarityMatrix(mlpSpec, a, b, res.perms, p);
    assert.equal(s.length, n * n);
    for (let i = 0; i < n; i++) {
      let arg = 0;
      for (let j = 1; j < n; j++) if (s[i * n + j] > s[i * n + arg]) arg = j;
      assert.equal(arg, i, `${p} row ${i}`);
    }
    // Before alignment (identity) the diagonal is not the argmax everywhere.
    const before = similarityMatrix(mlpSpec, a, b, identityPermutations(mlpSpec), p);
    let diag = 0;
    for (let i = 0; i < n; i++) {
      let arg = 0;
      for (let j = 1; j < n; j++) if (before[i * n + j] > before[i * n + arg]) arg = j;
      if (arg === i) diag++;
    }
    assert.ok(diag < n);
  }
});

test('conv-like tensors: permutations on axes 0 and 1 of a 4-d kernel are recovered', async () => {
  const r = mulberry32(21);
  const spec: PermSpec = {
    perms: { C1: 8, C2: 6 },
    axes: { 'c1.weight': ['C1', null, null, null], 'c1.bias': ['C1'], 'c2.weight': ['C2', 'C1', null, null], 'fc.weight': [null, 'C2'] },
  };
  const a = new Map([
    ['c1.weight', tensor([8, 3, 3, 3], r)], ['c1.bias', tensor([8], r)],
    ['c2.weight', tensor([6, 8, 3, 3], r)], ['fc.weight', tensor([4, 6], r)],
  ]);
  const applied = randomPermutations(spec, 4);
  const b = applyPermutations(spec, applied, a);
  const res = await weightMatching(spec, a, b, { seed: 2, maxIter: 10, matmul: jsMatMul });
  assert.deepEqual(res.perms.C1, invertPermutation(applied.C1));
  assert.deepEqual(res.perms.C2, invertPermutation(applied.C2));
});

test('permuteTensor gathers along each axis; invert and compose agree', () => {
  const r = mulberry32(30);
  const t = tensor([3, 4, 5], r);
  const p0 = Int32Array.from([2, 0, 1]);
  const p2 = Int32Array.from([4, 3, 0, 1, 2]);
  const out = permuteTensor(t, [p0, null, p2]);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 5; k++) {
    assert.equal(out.data[i * 20 + j * 5 + k], t.data[p0[i] * 20 + j * 5 + p2[k]]);
  }
  const back = permuteTensor(out, [invertPermutation(p0), null, invertPermutation(p2)]);
  assert.deepEqual(back.data, t.data);
  const q = Int32Array.from([1, 2, 0]);
  const twice = permuteTensor(permuteTensor(t, [p0, null, null]), [q, null, null]);
  assert.deepEqual(permuteTensor(t, [composePermutations(p0, q), null, null]).data, twice.data);
  assert.throws(() => permuteTensor(t, [p0, null]), (e: unknown) => e instanceof MatchingError && e.kind === 'BadSpec');
});

test('spec errors name the tensor', async () => {
  const a = randomMlp(1);
  const b = new Map(a);
  b.delete('layers.1.bias');
  await assert.rejects(weightMatching(mlpSpec, a, b, { seed: 0, maxIter: 1, matmul: jsMatMul }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'MissingTensor' && /`layers.1.bias`/.test(e.message));
  const nan = new Map(a);
  const w = a.get('layers.2.weight')!;
  nan.set('layers.2.weight', { shape: w.shape, data: w.data.map((x, i) => (i === 3 ? NaN : x)) });
  await assert.rejects(weightMatching(mlpSpec, a, nan, { seed: 0, maxIter: 1, matmul: jsMatMul }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'NotFinite' && /`P1`/.test(e.message));
  const bad: PermSpec = { perms: { P0: H0 + 1, P1: H1 }, axes: mlpSpec.axes };
  await assert.rejects(weightMatching(bad, a, a, { seed: 0, maxIter: 1, matmul: jsMatMul }),
    (e: unknown) => e instanceof MatchingError && e.kind === 'ShapeMismatch');
});

test('jsMatMul equals the naive product on odd sizes', () => {
  const r = mulberry32(40);
  for (const [m, k, n] of [[1, 1, 1], [7, 13, 5], [9, 300, 11], [4, 0, 4], [6, 2000, 70]]) {
    const x = new Float32Array(m * k).map(() => gaussian(r));
    const y = new Float32Array(n * k).map(() => gaussian(r));
    const c = matMulABt(x, y, m, k, n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * y[j * k + t];
      assert.ok(Math.abs(c[i * n + j] - s) < 1e-4 * (1 + Math.abs(s)));
    }
  }
});

test('similarityMatrixWith equals similarityMatrix; its trace along the perm is the group objective', async () => {
  const a = randomMlp(31);
  const b = randomMlp(32);
  const res = await weightMatching(mlpSpec, a, b, { seed: 5, maxIter: 20, matmul: jsMatMul });
  for (const g of res.groups) {
    const s1 = similarityMatrix(mlpSpec, a, b, res.perms, g.name);
    const s2 = await similarityMatrixWith(mlpSpec, a, b, res.perms, g.name, { abT: async (x, y, m, k, n) => matMulABt(x, y, m, k, n) });
    assert.deepEqual(s1, s2);
    let trace = 0;
    for (let i = 0; i < g.size; i++) trace += s1[i * g.size + i];
    assert.ok(Math.abs(trace - g.objectiveAfter) < 1e-4 * Math.abs(g.objectiveAfter), `${g.name}: ${trace} vs ${g.objectiveAfter}`);
  }
});

test('permutation algebra (property): inverse, composition and gather agree', () => {
  const permArb = fc.integer({ min: 1, max: 12 }).chain((n) =>
    fc.tuple(fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }),
      fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n })));
  fc.assert(fc.property(permArb, ([pArr, qArr]) => {
    const p = Int32Array.from(pArr);
    const q = Int32Array.from(qArr);
    const n = p.length;
    assert.deepEqual(invertPermutation(invertPermutation(p)), p);
    assert.deepEqual(composePermutations(p, invertPermutation(p)), Int32Array.from({ length: n }, (_, i) => i));
    const t: DenseTensor = { shape: [n, 2], data: Float32Array.from({ length: 2 * n }, (_, i) => i) };
    const viaTwo = permuteTensor(permuteTensor(t, [p, null]), [q, null]);
    assert.deepEqual(permuteTensor(t, [composePermutations(p, q), null]).data, viaTwo.data);
  }), { numRuns: 200, seed: 42 });
});

test('identity and random permutations; applyPermutations passes tensors outside the spec through', () => {
  const id = identityPermutations(mlpSpec);
  assert.deepEqual(Object.keys(id).sort(), ['P0', 'P1']);
  assert.deepEqual(Array.from(id.P1), Array.from({ length: H1 }, (_, i) => i));
  const r1 = randomPermutations(mlpSpec, 3);
  const r2 = randomPermutations(mlpSpec, 3);
  const r3 = randomPermutations(mlpSpec, 4);
  assert.deepEqual(r1, r2);
  assert.notDeepEqual(r1.P0, r3.P0);
  for (const p of ['P0', 'P1'] as const) assert.deepEqual(Array.from(r1[p]).sort((x, y) => x - y), Array.from(id[p]));
  const m = randomMlp(3);
  const extra: DenseTensor = { shape: [2], data: new Float32Array([1, 2]) };
  m.set('num_batches_tracked', extra);
  const out = applyPermutations(mlpSpec, r1, m);
  assert.equal(out.get('num_batches_tracked'), extra);
  const same = applyPermutations(mlpSpec, id, m);
  for (const [name, t] of m) assert.deepEqual(same.get(name)!.data, t.data);
  // objective is the float64 sum of inner products over the spec's tensors.
  let want = 0;
  for (const name of Object.keys(mlpSpec.axes)) for (const x of m.get(name)!.data) want += x * x;
  assert.ok(Math.abs(objective(mlpSpec, m, m) - want) < 1e-9 * want);
});

test('permutedDot equals the dot product with the gathered copy (float64 reference), ranks 1 to 4', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), fc.integer(), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), (shape, seed, which) => {
    const random = mulberry32(seed);
    const size = shape.reduce((p, s) => p * s, 1);
    const a = Float32Array.from({ length: size }, () => random() - 0.5);
    const b = Float32Array.from({ length: size }, () => random() - 0.5);
    const perms = shape.map((n, d) => {
      if (!which[d]) return null;
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [p[i], p[j]] = [p[j], p[i]]; }
      return Int32Array.from(p);
    });
    const gathered = permuteTensor({ shape, data: b }, perms).data;
    let reference = 0;
    for (let i = 0; i < size; i++) reference += a[i] * gathered[i];
    assert.ok(Math.abs(permutedDot(a, b, shape, perms) - reference) <= 1e-9 * (1 + Math.abs(reference)));
  }), { numRuns: 200 });
});

test('bytes reserved for the runtime count like the models: a smaller cache (more products, same permutations), and a refusal naming them past the budget', async () => {
  // Four hidden layers of two unrelated models: several sweeps, and products whose other
  // permutation did not change are reused from the cache.
  const widths = [6, 16, 16, 16, 16, 3];
  const spec: PermSpec = { perms: {}, axes: {} };
  const model = (seed: number): TensorMap => {
    const r = mulberry32(seed);
    const m = new Map<string, DenseTensor>();
    for (let l = 0; l + 1 < widths.length; l++) m.set(`layers.${l}.weight`, tensor([widths[l + 1], widths[l]], r));
    return m;
  };
  for (let l = 0; l + 1 < widths.length; l++) {
    const out = l + 2 < widths.length ? `P${l}` : null;
    if (out) (spec.perms as Record<string, number>)[out] = widths[l + 1];
    (spec.axes as Record<string, (string | null)[]>)[`layers.${l}.weight`] = [out, l > 0 ? `P${l - 1}` : null];
  }
  const a = model(21);
  const b = model(22);
  const run = async (reservedBytes: number): Promise<{ perms: Record<string, Int32Array>; products: number }> => {
    let products = 0;
    const counting: MatMulABt = { abT: async (x, y, m, k, n) => { products++; return matMulABt(x, y, m, k, n); } };
    const r = await weightMatching(spec, a, b, { seed: 1, maxIter: 20, matmul: counting, memoryBudget: 2 ** 30, reservedBytes });
    return { perms: r.perms, products };
  };
  const free = await run(0);
  // Reserved so that one solve just fits: no room left for cached products.
  const held = [...a.values(), ...b.values()].reduce((sum, t) => sum + 4 * t.data.length, 0);
  const shapes = new Map([...a].map(([name, t]) => [name, t.shape]));
  const { solveBytes } = planWeightMatching(spec, shapes, { budget: 2 ** 30, heldBytes: held });
  const reserved = await run(2 ** 30 - held - solveBytes);
  assert.deepEqual(reserved.perms, free.perms);
  assert.ok(reserved.products > free.products, `${reserved.products} products with the cache taken, ${free.products} without`);
  await assert.rejects(run(2 ** 30), (e: unknown) => e instanceof MemoryBudgetError && /the process's runtime 1\.1 GB\), over the memory budget of 1\.1 GB/.test(e.message));
});
