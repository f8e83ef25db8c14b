import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssignmentError, certifyOptimal, solveAssignmentMax } from '../../../../src/core/assignment/lap';
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
