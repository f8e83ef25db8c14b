/**
 * SVD and Procrustes (src/core/linalg) against plain float64 references written here: the
 * reconstruction U S V^T, the polar factor by Newton's iteration X <- (X + X^-T) / 2 (a different
 * algorithm reaching the same R for a non-singular M), brute force over permutations, and, for the
 * fast eigendecomposition path, the one-sided Jacobi SVD on random, rank-deficient and ill-conditioned M.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { householderTo, matMul, procrustes, procrustesByJacobi, procrustesFixing, svd } from '../../../../src/core/linalg';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { gaussian, orthogonalityError, randomOrthogonal, randomOrthogonalFixing } from '../../../../src/core/symmetry/orthogonal';

const randomMatrix = (m: number, n: number, random: () => number) => Float64Array.from({ length: m * n }, () => gaussian(random));
const inner = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i], 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** Plain Gauss-Jordan inverse with partial pivoting (float64). */
function inverse(a: Float64Array, d: number): Float64Array {
  const w = Float64Array.from(a);
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) inv[i * d + i] = 1;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(w[r * d + c]) > Math.abs(w[p * d + c])) p = r;
    for (const x of [w, inv]) for (let j = 0; j < d; j++) [x[c * d + j], x[p * d + j]] = [x[p * d + j], x[c * d + j]];
    const piv = w[c * d + c];
    for (const x of [w, inv]) for (let j = 0; j < d; j++) x[c * d + j] /= piv;
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = w[r * d + c];
      for (const x of [w, inv]) for (let j = 0; j < d; j++) x[r * d + j] -= f * x[c * d + j];
    }
  }
  return inv;
}

/** The polar factor of a non-singular M by Newton's iteration (Higham 1986), unscaled, to convergence. */
function polarReference(m: Float64Array, d: number): Float64Array {
  let x = Float64Array.from(m);
  for (let it = 0; it < 100; it++) {
    const invT = inverse(x, d);
    const next = x.map((v, idx) => (v + invT[(idx % d) * d + Math.floor(idx / d)]) / 2);
    const change = maxDiff(next, x);
    x = next;
    if (change < 1e-15) break;
  }
  return x;
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

describe('svd (one-sided Jacobi, float64)', () => {
  it('reconstructs random square and tall matrices, orthonormal U and V, non-increasing singular values', () => {
    const random = mulberry32(1);
    for (const [m, n] of [[1, 1], [5, 5], [17, 9], [40, 40]]) {
      const a = randomMatrix(m, n, random);
      const { u, s, v } = svd(a, m, n);
      const back = new Float64Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) back[i * n + j] += u[i * n + k] * s[k] * v[j * n + k];
      assert.ok(maxDiff(back, a) < 1e-12, `${m}x${n}: reconstruction off by ${maxDiff(back, a)}`);
      assert.ok(orthogonalityError(v, n) < 1e-12);
      const utu = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < m; k++) utu[i * n + j] += u[k * n + i] * u[k * n + j];
      assert.ok(maxDiff(utu, Float64Array.from({ length: n * n }, (_, idx) => (idx % (n + 1) === 0 ? 1 : 0))) < 1e-12);
      for (let k = 1; k < n; k++) assert.ok(s[k] <= s[k - 1] && s[k] >= 0);
    }
  });

  it('completes U for a rank-deficient matrix (zero singular values)', () => {
    const random = mulberry32(2);
    const d = 8;
    const left = randomMatrix(d, 3, random);
    const right = randomMatrix(3, d, random);
    const a = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < 3; k++) a[i * d + j] += left[i * 3 + k] * right[k * d + j];
    const { u, s } = svd(a, d, d);
    assert.ok(orthogonalityError(u, d) < 1e-12, `U not orthogonal: ${orthogonalityError(u, d)}`);
    for (let k = 3; k < d; k++) assert.ok(s[k] < 1e-12 * s[0]);
    const r = procrustes(a, d);
    assert.ok(orthogonalityError(r, d) < 1e-10);
    assert.ok(Math.abs(inner(r, a) - s.reduce((x, y) => x + y, 0)) < 1e-10 * s[0]);
  });
});

describe('procrustes', () => {
  it('equals the polar factor of a plain Newton reference, is orthogonal to 1e-10, and reaches the nuclear norm', () => {
    const random = mulberry32(3);
    for (const d of [2, 7, 32]) {
      const m = randomMatrix(d, d, random);
      const r = procrustes(m, d);
      assert.ok(orthogonalityError(r, d) < 1e-10);
      assert.ok(maxDiff(r, polarReference(m, d)) < 1e-9, `d=${d}: ${maxDiff(r, polarReference(m, d))} from the reference`);
      const nuclear = svd(m, d, d).s.reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(inner(r, m) - nuclear) < 1e-10 * nuclear);
    }
  });

  it('beats random orthogonal matrices and the best permutation (brute force over 6! x signs)', () => {
    const random = mulberry32(4);
    const d = 6;
    const m = randomMatrix(d, d, random);
    const best = inner(procrustes(m, d), m);
    for (let i = 0; i < 200; i++) assert.ok(best >= inner(randomOrthogonal(d, random), m));
    let bestPerm = -Infinity;
    for (const p of permutations(d)) bestPerm = Math.max(bestPerm, p.reduce((acc, j, i) => acc + Math.abs(m[i * d + j]), 0));
    assert.ok(best >= bestPerm - 1e-12, `${best} < best signed permutation ${bestPerm}`);
  });

  it('recovers a known orthogonal Q from M = Q S, S symmetric positive definite', () => {
    const random = mulberry32(5);
    for (const d of [3, 16, 48]) {
      const q = randomOrthogonal(d, random);
      const a = randomMatrix(d, d, random);
      const spd = matMul(a, true, a, false, d).map((x, idx) => x + (idx % (d + 1) === 0 ? 0.1 : 0));
      const r = procrustes(matMul(q, false, spd, false, d), d);
      assert.ok(maxDiff(r, q) < 1e-10, `d=${d}: ${maxDiff(r, q)}`);
    }
  });

  it('fast-check: orthogonal, objective = sum of singular values, at least that of the identity and of -I', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer(), (d, seed) => {
        const m = randomMatrix(d, d, mulberry32(seed));
        const r = procrustes(m, d);
        const obj = inner(r, m);
        const trace = Array.from({ length: d }, (_, i) => m[i * d + i]).reduce((x, y) => x + y, 0);
        const nuclear = svd(m, d, d).s.reduce((x, y) => x + y, 0);
        return orthogonalityError(r, d) < 1e-10 && Math.abs(obj - nuclear) < 1e-9 * (1 + nuclear) && obj >= Math.abs(trace) - 1e-12;
      }),
      { numRuns: 200 },
    );
  });
});

describe('procrustesFixing (R u = u, for LayerNorm)', () => {
  const ones = (d: number) => new Float64Array(d).fill(1 / Math.sqrt(d));

  it('fixes u, is orthogonal, and beats random orthogonal maps that fix u', () => {
    const random = mulberry32(6);
    for (const d of [2, 5, 24]) {
      const m = randomMatrix(d, d, random);
      const r = procrustesFixing(m, d, ones(d));
      assert.ok(orthogonalityError(r, d) < 1e-10);
      for (let i = 0; i < d; i++) assert.ok(Math.abs(Array.from(r.subarray(i * d, (i + 1) * d)).reduce((x, y) => x + y, 0) - 1) < 1e-10);
      const best = inner(r, m);
      for (let i = 0; i < 100; i++) assert.ok(best >= inner(randomOrthogonalFixing(ones(d), d, random), m) - 1e-12);
      assert.ok(best <= inner(procrustes(m, d), m) + 1e-12);
    }
  });

  it('recovers a known R fixing u from M = S R, S symmetric positive definite', () => {
    const random = mulberry32(7);
    const d = 20;
    const q = randomOrthogonalFixing(ones(d), d, random);
    const a = randomMatrix(d, d, random);
    const spd = matMul(a, true, a, false, d);
    const r = procrustesFixing(matMul(spd, false, q, false, d), d, ones(d));
    assert.ok(maxDiff(r, q) < 1e-10, `${maxDiff(r, q)}`);
  });
});

describe('procrustes (eigendecomposition of M^T M) against the one-sided Jacobi reference', () => {
  /** M = Q1 diag(s) Q2^T with chosen singular values. */
  const withSingularValues = (s: readonly number[], random: () => number): Float64Array => {
    const d = s.length;
    const left = randomOrthogonal(d, random);
    const right = randomOrthogonal(d, random);
    const scaled = left.map((x, idx) => x * s[idx % d]);
    return matMul(scaled, false, right, true, d);
  };
  const check = (label: string, m: Float64Array, d: number, objectiveTol: number) => {
    const r = procrustes(m, d);
    const reference = procrustesByJacobi(m, d);
    const nuclear = svd(m, d, d).s.reduce((x, y) => x + y, 0);
    assert.ok(orthogonalityError(r, d) < 1e-10, `${label}: orthogonality error ${orthogonalityError(r, d)}`);
    const gap = Math.abs(inner(r, m) - inner(reference, m));
    assert.ok(gap <= objectiveTol * Math.max(nuclear, 1e-300), `${label}: objective ${inner(r, m)} vs reference ${inner(reference, m)}`);
    return { r, reference };
  };

  it('random M (d = 64, 128): the same R and objective as the reference', () => {
    const random = mulberry32(11);
    for (const d of [64, 128]) {
      const m = randomMatrix(d, d, random);
      const { r, reference } = check(`random d=${d}`, m, d, 1e-12);
      assert.ok(maxDiff(r, reference) < 1e-8, `d=${d}: R differs from the reference by ${maxDiff(r, reference)}`);
    }
  });

  it('rank-deficient M (rank 5 and rank d/2, d = 96) and M = 0: orthogonal, same objective', () => {
    const random = mulberry32(12);
    const d = 96;
    for (const rank of [5, d / 2]) {
      const s = Array.from({ length: d }, (_, i) => (i < rank ? 1 + random() : 0));
      check(`rank ${rank}`, withSingularValues(s, random), d, 1e-12);
    }
    const r = procrustes(new Float64Array(16 * 16), 16);
    assert.ok(orthogonalityError(r, 16) < 1e-12);
  });

  it('ill-conditioned M (singular values from 1 down to 1e-12, d = 96; and 1e3 .. 1e-9 with clusters)', () => {
    const random = mulberry32(13);
    const d = 96;
    check('geometric 1..1e-12', withSingularValues(Array.from({ length: d }, (_, i) => 10 ** ((-12 * i) / (d - 1))), random), d, 1e-12);
    const clustered = Array.from({ length: d }, (_, i) => (i < 30 ? 1e3 : i < 60 ? 1 + 1e-12 * i : 1e-9));
    check('clusters', withSingularValues(clustered, random), d, 1e-12);
  });

  it('an orthogonal M (all singular values equal) is its own Procrustes solution', () => {
    const random = mulberry32(14);
    const q = randomOrthogonal(64, random);
    assert.ok(maxDiff(procrustes(q, 64), q) < 1e-12);
  });

  it('recovers a known Q from Q S with S symmetric positive definite at d = 128', () => {
    const random = mulberry32(15);
    const d = 128;
    const q = randomOrthogonal(d, random);
    const a = randomMatrix(d, d, random);
    const spd = matMul(a, true, a, false, d).map((x, idx) => x + (idx % (d + 1) === 0 ? 0.1 : 0));
    assert.ok(maxDiff(procrustes(matMul(q, false, spd, false, d), d), q) < 1e-9);
  });

  it('procrustesFixing at d = 97: equals the reduction solved by the Jacobi reference', () => {
    const random = mulberry32(16);
    const d = 97;
    const u = new Float64Array(d).fill(1 / Math.sqrt(d));
    for (const m of [randomMatrix(d, d, random), withSingularValues(Array.from({ length: d }, (_, i) => (i < 10 ? 1 : 0)), random)]) {
      const r = procrustesFixing(m, d, u);
      const h = householderTo(u, d);
      const inner0 = matMul(matMul(h, false, m, false, d), false, h, false, d);
      const block = Float64Array.from({ length: (d - 1) * (d - 1) }, (_, idx) => inner0[(Math.floor(idx / (d - 1)) + 1) * d + (idx % (d - 1)) + 1]);
      const rb = procrustesByJacobi(block, d - 1);
      const mid = Float64Array.from({ length: d * d }, (_, idx) => {
        const i = Math.floor(idx / d);
        const j = idx % d;
        return i === 0 || j === 0 ? (i === j ? 1 : 0) : rb[(i - 1) * (d - 1) + j - 1];
      });
      const reference = matMul(matMul(h, false, mid, false, d), false, h, false, d);
      assert.ok(orthogonalityError(r, d) < 1e-10);
      for (let i = 0; i < d; i++) assert.ok(Math.abs(inner(r.subarray(i * d, (i + 1) * d), u) - u[i]) < 1e-10);
      assert.ok(Math.abs(inner(r, m) - inner(reference, m)) < 1e-11 * Math.abs(inner(reference, m)));
    }
  });
});
