/**
 * The symmetric eigensolver (src/core/linalg/symmetricEigen.ts) against plain checks: the
 * reconstruction V^T diag(values) V, orthonormal rows, and eigenvalues equal to the squared
 * singular values from the one-sided Jacobi SVD; plus repeated, zero and tiny cases.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gemm, svd, symmetricEigen, transpose } from '../../../../src/core/linalg';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { gaussian, orthogonalityError } from '../../../../src/core/symmetry/orthogonal';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

function reconstruct(values: Float64Array, vectors: Float64Array, n: number): Float64Array {
  const scaled = vectors.map((x, idx) => x * values[Math.floor(idx / n)]);
  return gemm(transpose(vectors, n, n), scaled, n, n, n);
}

describe('symmetricEigen (Householder + implicit QL)', () => {
  it('reconstructs random symmetric matrices (n = 1, 2, 3, 50, 120) with orthonormal eigenvectors, values non-increasing', () => {
    const random = mulberry32(31);
    for (const n of [1, 2, 3, 50, 120]) {
      const x = Float64Array.from({ length: n * n }, () => gaussian(random));
      const a = x.map((_, idx) => x[idx] + x[(idx % n) * n + Math.floor(idx / n)]);
      const { values, vectors } = symmetricEigen(a, n);
      const scale = Math.max(1, ...Array.from(values, Math.abs));
      assert.ok(maxDiff(reconstruct(values, vectors, n), a) < 1e-12 * scale * n, `n=${n}: ${maxDiff(reconstruct(values, vectors, n), a)}`);
      assert.ok(orthogonalityError(vectors, n) < 1e-12, `n=${n}: vectors off orthonormal by ${orthogonalityError(vectors, n)}`);
      for (let i = 1; i < n; i++) assert.ok(values[i] <= values[i - 1]);
    }
  });

  it('the eigenvalues of M^T M are the squared singular values of M from the Jacobi SVD', () => {
    const random = mulberry32(32);
    const n = 60;
    const m = Float64Array.from({ length: n * n }, () => gaussian(random));
    const { values } = symmetricEigen(gemm(transpose(m, n, n), m, n, n, n), n);
    const { s } = svd(m, n, n);
    assert.ok(maxDiff(values, s.map((x) => x * x)) < 1e-11 * s[0] * s[0]);
  });

  it('handles the zero matrix, the identity (one repeated value) and a diagonal matrix', () => {
    const n = 30;
    const zero = symmetricEigen(new Float64Array(n * n), n);
    assert.ok(zero.values.every((x) => x === 0) && orthogonalityError(zero.vectors, n) < 1e-15);
    const id = symmetricEigen(Float64Array.from({ length: n * n }, (_, idx) => (idx % (n + 1) === 0 ? 1 : 0)), n);
    assert.ok(id.values.every((x) => Math.abs(x - 1) < 1e-15) && orthogonalityError(id.vectors, n) < 1e-14);
    const diag = Float64Array.from({ length: n * n }, (_, idx) => (idx % (n + 1) === 0 ? (idx / (n + 1)) % 7 : 0));
    const dg = symmetricEigen(diag, n);
    assert.ok(maxDiff(reconstruct(dg.values, dg.vectors, n), diag) < 1e-13);
  });
});
