import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssignmentError, certifyOptimal, RowRateEstimate, solveAssignmentMax, solveAssignmentMaxAsync, type AssignmentProgress } from '../../../../src/core/assignment/lap';
import { mulberry32 } from '../../../../src/core/matching/prng';

const rng = mulberry32;

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Best value over all n! permutations (Heap's algorithm). */
function bruteForceMax(c: Float64Array, n: number): number {
  const p = Array.from({ length: n }, (_, i) => i);
  const score = (): number => p.reduce((s, j, i) => s + c[i * n + j], 0);
  let best = score();
  const cnt = new Array<number>(n).fill(0);
  let i = 0;
  while (i < n) {
    if (cnt[i] < i) {
      const k = i % 2 === 0 ? 0 : cnt[i];
      [p[k], p[i]] = [p[i], p[k]];
      best = Math.max(best, score());
      cnt[i]++;
      i = 0;
    } else {
      cnt[i] = 0;
      i++;
    }
  }
  return best;
}

type Kind = 'uniform' | 'ints' | 'ties' | 'negative' | 'gauss';
function matrix(kind: Kind, n: number, r: () => number): Float64Array {
  const c = new Float64Array(n * n);
  for (let k = 0; k < c.length; k++) {
    switch (kind) {
      case 'uniform': c[k] = r(); break;
      case 'ints': c[k] = Math.floor(r() * 10); break;
      case 'ties': c[k] = Math.floor(r() * 3); break;
      case 'negative': c[k] = -1000 * r() - 5; break;
      case 'gauss': c[k] = gauss(r) * 1e3; break;
    }
  }
  return c;
}

test('matches brute force on random matrices n <= 7 (uniform, integer, ties, negative, gaussian)', () => {
  const r = rng(1);
  const kinds: Kind[] = ['uniform', 'ints', 'ties', 'negative', 'gauss'];
  for (let n = 1; n <= 7; n++) {
    const trials = n <= 5 ? 200 : 40;
    for (let t = 0; t < trials; t++) {
      const kind = kinds[t % kinds.length];
      const c = matrix(kind, n, r);
      const res = solveAssignmentMax(c, n);
      const best = bruteForceMax(c, n);
      assert.ok(Math.abs(res.value - best) <= 1e-9 * Math.max(1, Math.abs(best)), `${kind} n=${n}: ${res.value} vs ${best}`);
      assert.equal(certifyOptimal(c, n, res, 1e-9 * Math.max(1, Math.abs(best))), null);
      const direct = Array.from(res.rowToCol).reduce((s, j, i) => s + c[i * n + j], 0);
      assert.ok(Math.abs(direct - res.value) <= 1e-9 * Math.max(1, Math.abs(best)));
    }
  }
});

test('float32 input gives the same optimum as its float64 copy', () => {
  const r = rng(7);
  const n = 64;
  const c32 = new Float32Array(n * n).map(() => r());
  const a = solveAssignmentMax(c32, n);
  const b = solveAssignmentMax(Float64Array.from(c32), n);
  assert.ok(Math.abs(a.value - b.value) < 1e-9);
  assert.equal(certifyOptimal(c32, n, a, 1e-9), null);
});

/** corr case: cost = A.B^T with B a noisy row-permuted copy of A (what weight matching sees). */
function corrMatrix(n: number, k: number, r: () => number): { c: Float32Array; perm: Int32Array } {
  const a = new Float32Array(n * k).map(() => gauss(r));
  const perm = new Int32Array(n).map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const b = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) b[i * k + t] = a[perm[i] * k + t] + 0.5 * gauss(r);
  const c = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
      c[i * n + j] = s;
    }
  }
  return { c, perm };
}

test('dual certificate holds for uniform, gaussian and corr matrices up to n = 1024', () => {
  const r = rng(3);
  for (const n of [10, 100, 333, 1024]) {
    const uni = new Float32Array(n * n).map(() => r());
    const resU = solveAssignmentMax(uni, n);
    assert.equal(certifyOptimal(uni, n, resU, 1e-9), null, `uniform n=${n}`);
    const g = new Float64Array(n * n).map(() => gauss(r));
    const resG = solveAssignmentMax(g, n);
    assert.equal(certifyOptimal(g, n, resG, 1e-9), null, `gauss n=${n}`);
  }
  for (const n of [64, 1024]) {
    const { c, perm } = corrMatrix(n, 64, r);
    const res = solveAssignmentMax(c, n);
    assert.equal(certifyOptimal(c, n, res, 1e-6), null, `corr n=${n}`);
    // Row i of B is row perm[i] of A, so A's unit perm[i] matches B's unit i.
    for (let i = 0; i < n; i++) assert.equal(res.rowToCol[perm[i]], i);
  }
});

test('n = 1, n = 0, constant and identity-like matrices', () => {
  const one = solveAssignmentMax(new Float32Array([-3.5]), 1);
  assert.deepEqual(Array.from(one.rowToCol), [0]);
  assert.equal(one.value, -3.5);
  assert.equal(certifyOptimal(new Float32Array([-3.5]), 1, one, 0), null);
  const zero = solveAssignmentMax(new Float32Array(0), 0);
  assert.equal(zero.rowToCol.length, 0);
  assert.equal(zero.value, 0);
  const n = 50;
  const constant = new Float64Array(n * n).fill(2.25);
  const rc = solveAssignmentMax(constant, n);
  assert.equal(rc.value, 2.25 * n);
  assert.equal(certifyOptimal(constant, n, rc, 1e-12), null);
  const eye = new Float64Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const re = solveAssignmentMax(eye, n);
  assert.deepEqual(Array.from(re.rowToCol), Array.from({ length: n }, (_, i) => i));
});

test('rejects NaN, infinite and mis-sized input with a clear error', () => {
  const c = new Float32Array([1, 2, NaN, 4]);
  assert.throws(() => solveAssignmentMax(c, 2), (e: unknown) =>
    e instanceof AssignmentError && e.kind === 'NotFinite' && /cost\[1, 0\] is NaN/.test(e.message));
  assert.throws(() => solveAssignmentMax(new Float64Array([Infinity]), 1), (e: unknown) =>
    e instanceof AssignmentError && e.kind === 'NotFinite');
  assert.throws(() => solveAssignmentMax(new Float32Array(5), 2), (e: unknown) =>
    e instanceof AssignmentError && e.kind === 'BadShape');
});

/** A rank-`r` cost a·bᵀ: the degenerate case (long augmenting paths) of a 1-N-1 MLP's hidden layer. */
function lowRank(n: number, r: number, seed: number): Float32Array {
  const g = rng(seed);
  const a = Array.from({ length: r }, () => Float64Array.from({ length: n }, () => gauss(g)));
  const b = Array.from({ length: r }, () => Float64Array.from({ length: n }, () => gauss(g)));
  const c = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let q = 0; q < r; q++) c[i * n + j] += a[q][i] * b[q][j];
  return c;
}

test('the async solve gives the sync solve\'s certified optimum on a low-rank cost, reporting rows as it goes', async () => {
  const n = 400;
  const c = lowRank(n, 1, 5);
  const sync = solveAssignmentMax(c, n);
  let t = 0;
  const seen: AssignmentProgress[] = [];
  // A clock that moves 10 ms per look: every checkpoint is a slice and a report.
  const res = await solveAssignmentMaxAsync(c, n, { clock: () => (t += 10), sliceMs: 1, reportMs: 1, onProgress: (p) => seen.push(p) });
  assert.deepEqual(res.rowToCol, sync.rowToCol);
  assert.equal(res.value, sync.value);
  assert.equal(certifyOptimal(c, n, res, 1e-6 * Math.abs(res.value)), null);
  // Rank 1: the optimum pairs a's and b's order (rearrangement inequality).
  assert.ok(seen.some((p) => p.phase === 'augmenting' && p.rowsDone > 0 && p.rowsDone < n), JSON.stringify(seen.slice(0, 3)));
  assert.ok(seen.every((p) => p.n === n));
});

test('the async solve stops on an aborted signal between slices', async () => {
  const n = 300;
  const c = lowRank(n, 2, 6);
  const controller = new AbortController();
  let t = 0;
  const solving = solveAssignmentMaxAsync(c, n, {
    signal: controller.signal, clock: () => (t += 10), sliceMs: 1, reportMs: 1,
    onProgress: () => controller.abort(),
  });
  await assert.rejects(solving, (e: unknown) => e instanceof AssignmentError && e.kind === 'Cancelled');
});

test('the time left follows a rate that grows with the rows done (fitted t ~ k^e, e in [1, 3])', () => {
  // Elapsed time grows as k^2 (each row's path twice as long at twice the rows): at k = 250 of 1000,
  // 1 s spent, 16 s in all: 15 s are left, where a constant rate would promise 3 s.
  const quadratic = new RowRateEstimate();
  quadratic.observe(0, 1000, 0);
  for (let k = 1; k <= 250; k++) quadratic.observe(k, 1000, 1000 * (k / 250) ** 2);
  assert.ok(Math.abs(quadratic.secondsLeft()! - 15) < 0.5, String(quadratic.secondsLeft()));
  const linear = new RowRateEstimate();
  linear.observe(0, 1000, 0);
  for (let k = 1; k <= 500; k++) linear.observe(k, 1000, 4 * k);
  assert.ok(Math.abs(linear.secondsLeft()! - 2) < 0.1, String(linear.secondsLeft()));
  const early = new RowRateEstimate();
  early.observe(10, 1000, 0);
  early.observe(20, 1000, 500);
  assert.equal(early.secondsLeft(), undefined, 'no estimate in the first second');
});
