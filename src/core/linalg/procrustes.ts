/**
 * Orthogonal Procrustes (Schönemann 1966): the orthogonal R maximising <R, M> = trace(R^T M) is
 * the polar factor R = U V^T of M = U S V^T. To map B's features onto A's (X_B R ~ X_A, rows are
 * samples) take M = X_B^T X_A, the cross-correlation. `procrustesFixing` adds the constraint
 * R u = u for a unit vector u (LayerNorm's all-ones direction, see
 * src/core/symmetry/transformerGroup.ts): the problem splits into u's line and its complement,
 * solved by Procrustes in d - 1 dimensions.
 *
 * Method, chosen by measurement (bench/procrustes.ts; figures in docs/transformers.md): the
 * symmetric eigendecomposition M^T M = V S^2 V^T (Householder tridiagonalisation + implicit QL,
 * symmetricEigen.ts) gives V, U's columns are M v_i / |M v_i|, and R = U V^T; about 10 d^3 flops
 * with the products, in float64. The alternatives: one-sided Jacobi (svd.ts) is 6 to 12 sweeps of
 * 6 d^3 flops with poor locality, 3 to 5 times slower here at d = 256 .. 768, and stays as the
 * float64 reference in tests (procrustesReference.ts); ml-matrix's SVD is the same Golub-Kahan
 * algorithm of JAMA on arrays of arrays (not faster in kind, so no dependency); a polar iteration
 * on tfjs products (Newton-Schulz) is float32 and needs tens of d^3 products for an
 * ill-conditioned M. Squaring M loses the directions of singular values below sqrt(eps) s_1
 * (relative error eps (s_1 / s_i)^2), so the tail below TAIL s_1 is solved again, recursively, in
 * the complement of the head (polarFactors); numerically null directions are completed from the
 * standard basis (any completion gives the same objective).
 */
import { gemm, transpose } from './dense';
import { symmetricEigen } from './symmetricEigen';

/** Below this fraction of the largest singular value, the singular directions are solved again. */
const TAIL = 1e-3;

/** The orthogonal d x d R (row-major) maximising trace(R^T M) for a row-major d x d M. */
export function procrustes(mat: ArrayLike<number>, d: number): Float64Array {
  if (mat.length !== d * d) throw new RangeError(`procrustes: ${mat.length} values for a ${d} x ${d} matrix`);
  if (d === 0) return new Float64Array(0);
  const { u, v } = polarFactors(mat, d, 0);
  // R = U V^T with U and V held as rows (u_i^T, v_i^T).
  return gemm(transpose(u, d, d), v, d, d, d);
}

/**
 * U and V (as rows) with R = U V^T the Procrustes solution. Squaring M loses the directions of
 * singular values below sqrt(eps) s_1, so the tail (s_i < TAIL s_1) is solved again: with P the
 * orthonormal rows completing the head's U and V_t the tail's rows of V, the best R on the tail
 * is P^T Rc V_t for Rc the Procrustes solution of C = P M V_t^T (t x t), found recursively.
 * `floor` is the size below which singular values of the original M are numerically zero.
 */
function polarFactors(mat: ArrayLike<number>, d: number, floor: number): { u: Float64Array; v: Float64Array } {
  const mt = transpose(mat, d, d);
  const { values, vectors } = symmetricEigen(gemm(mt, mat, d, d, d), d);
  // Row i of w is (M v_i)^T = s_i u_i^T.
  const w = gemm(vectors, mt, d, d, d);
  const sigma1 = Math.sqrt(Math.max(values[0], 0));
  const limit = Math.max(floor, sigma1 * Number.EPSILON * d);
  let head = 0;
  for (let i = 0; i < d; i++) {
    const row = w.subarray(i * d, i * d + d);
    const len = norm(row);
    // Once one row falls in the tail, all later ones do (the values are sorted).
    if (head === i && len > TAIL * sigma1 && len > limit) {
      scale(row, 1 / len);
      head = i + 1;
      continue;
    }
    orthonormaliseRow(w, d, i, len > 0 ? 1 / len : 0);
  }
  const t = d - head;
  if (t === 0 || head === 0) return { u: w, v: vectors };
  const tailU = w.subarray(head * d);
  const tailV = vectors.subarray(head * d);
  const c = gemm(gemm(tailU, mat, t, d, d), transpose(tailV, t, d), t, d, t);
  if (norm(c) <= limit) return { u: w, v: vectors };
  const inner = polarFactors(c, t, limit);
  // R restricted to the tail = P^T (Uc Vc^T) V_t: new rows Uc^T P and Vc^T V_t.
  w.set(gemm(inner.u, tailU, t, t, d), head * d);
  vectors.set(gemm(inner.v, tailV, t, t, d), head * d);
  return { u: w, v: vectors };
}

/**
 * Makes row i of the d x d w a unit vector orthogonal to rows 0..i-1 (already orthonormal):
 * Gram-Schmidt twice of the row itself, or, when little of it is left (a null or numerically null
 * singular direction: any completion gives the same objective), of standard basis vectors.
 */
function orthonormaliseRow(w: Float64Array, d: number, i: number, rowScale: number): void {
  const row = w.subarray(i * d, i * d + d);
  scale(row, rowScale);
  const tryCandidate = (): boolean => {
    const before = norm(row);
    if (before === 0) return false;
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const other = w.subarray(j * d, j * d + d);
        let dot = 0;
        for (let k = 0; k < d; k++) dot += other[k] * row[k];
        for (let k = 0; k < d; k++) row[k] -= dot * other[k];
      }
    }
    const after = norm(row);
    if (after <= 0.1 * before) return false;
    scale(row, 1 / after);
    return true;
  };
  if (tryCandidate()) return;
  for (let c = 0; c < d; c++) {
    row.fill(0);
    row[(i + c) % d] = 1;
    if (tryCandidate()) return;
  }
  throw new Error('procrustes: could not complete an orthonormal basis');
}

function norm(x: Float64Array): number {
  let acc = 0;
  for (let k = 0; k < x.length; k++) acc += x[k] * x[k];
  return Math.sqrt(acc);
}

function scale(x: Float64Array, f: number): void {
  for (let k = 0; k < x.length; k++) x[k] *= f;
}

/**
 * The orthogonal R maximising trace(R^T M) among those with R u = u (then also u^T R = u^T),
 * for a unit vector u: R = H diag(1, R') H with H the Householder reflection taking e_1 to u
 * and R' the Procrustes solution of the lower-right (d-1) x (d-1) block of H M H. H is applied
 * as a rank-one update (O(d^2)), never formed.
 */
export function procrustesFixing(mat: ArrayLike<number>, d: number, unit: ArrayLike<number>): Float64Array {
  if (mat.length !== d * d) throw new RangeError(`procrustesFixing: ${mat.length} values for a ${d} x ${d} matrix`);
  const reflect = householderApplier(unit, d);
  const inner = reflect.right(reflect.left(Float64Array.from(mat)));
  const block = new Float64Array((d - 1) * (d - 1));
  for (let i = 1; i < d; i++) block.set(inner.subarray(i * d + 1, i * d + d), (i - 1) * (d - 1));
  const rInner = d > 1 ? procrustes(block, d - 1) : new Float64Array(0);
  const mid = new Float64Array(d * d);
  if (d > 0) mid[0] = 1;
  for (let i = 1; i < d; i++) mid.set(rInner.subarray((i - 1) * (d - 1), i * (d - 1)), i * d + 1);
  return reflect.right(reflect.left(mid));
}

/** H X and X H in place for H = I - 2 w w^T / w^T w with w = u - e_1 (H e_1 = u), in O(d^2). */
function householderApplier(unit: ArrayLike<number>, d: number): { left: (x: Float64Array) => Float64Array; right: (x: Float64Array) => Float64Array } {
  const w = Float64Array.from({ length: d }, (_, i) => unit[i] - (i === 0 ? 1 : 0));
  const ww = w.reduce((a, x) => a + x * x, 0);
  const f = ww === 0 ? 0 : 2 / ww;
  const t = new Float64Array(d);
  return {
    left: (x) => {
      if (f === 0) return x;
      t.fill(0);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) t[j] += w[i] * x[i * d + j];
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) x[i * d + j] -= f * w[i] * t[j];
      return x;
    },
    right: (x) => {
      if (f === 0) return x;
      for (let i = 0; i < d; i++) {
        let acc = 0;
        for (let j = 0; j < d; j++) acc += x[i * d + j] * w[j];
        for (let j = 0; j < d; j++) x[i * d + j] -= f * acc * w[j];
      }
      return x;
    },
  };
}

/** The symmetric orthogonal Householder matrix H (row-major) with H e_1 = u (u a unit vector). */
export function householderTo(unit: ArrayLike<number>, d: number): Float64Array {
  const w = Float64Array.from({ length: d }, (_, i) => unit[i] - (i === 0 ? 1 : 0));
  const ww = w.reduce((a, x) => a + x * x, 0);
  const h = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) h[i * d + j] = (i === j ? 1 : 0) - (ww === 0 ? 0 : (2 * w[i] * w[j]) / ww);
  }
  return h;
}

/** A B (each optionally transposed) for d x d row-major matrices, in float64. */
export function matMul(a: ArrayLike<number>, ta: boolean, b: ArrayLike<number>, tb: boolean, d: number): Float64Array {
  return gemm(ta ? transpose(a, d, d) : a, tb ? transpose(b, d, d) : b, d, d, d);
}
