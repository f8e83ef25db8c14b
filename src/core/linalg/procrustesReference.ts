/**
 * Procrustes by the one-sided Jacobi SVD (svd.ts), R = U V^T: the float64 reference the fast
 * path (procrustes.ts) is tested and benchmarked against. Slow: 16 s at d = 768 here.
 */
import { gemm, transpose } from './dense';
import { svd } from './svd';

/** The orthogonal d x d R maximising trace(R^T M), from the Jacobi SVD of M. */
export function procrustesByJacobi(mat: ArrayLike<number>, d: number): Float64Array {
  const { u, v } = svd(mat, d, d);
  return gemm(u, transpose(v, d, d), d, d, d);
}
