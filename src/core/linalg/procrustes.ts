/**
 * Orthogonal Procrustes (Schönemann 1966): the orthogonal R maximising <R, M> = trace(R^T M) is
 * R = U V^T for M = U S V^T. To map B's features onto A's (X_B R ~ X_A, rows are samples) take
 * M = X_B^T X_A, the cross-correlation. `procrustesFixing` adds the constraint R u = u for a unit
 * vector u (LayerNorm's all-ones direction, see src/core/symmetry/transformerGroup.ts): the
 * problem splits into u's line and its complement, solved by Procrustes in d - 1 dimensions.
 */
import { svd } from './svd';

/** The orthogonal d x d R (row-major) maximising trace(R^T M) for a row-major d x d M. */
export function procrustes(mat: ArrayLike<number>, d: number): Float64Array {
  const { u, v } = svd(mat, d, d);
  const r = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += u[i * d + k] * v[j * d + k];
      r[i * d + j] = acc;
    }
  }
  return r;
}

/**
 * The orthogonal R maximising trace(R^T M) among those with R u = u (then also u^T R = u^T),
 * for a unit vector u: R = H diag(1, R') H^T with H the Householder reflection taking e_1 to u
 * and R' the Procrustes solution of the lower-right (d-1) x (d-1) block of H^T M H.
 */
export function procrustesFixing(mat: ArrayLike<number>, d: number, unit: ArrayLike<number>): Float64Array {
  const h = householderTo(unit, d);
  const inner = mulAll(h, d, true, mat, false, h, false);
  const block = new Float64Array((d - 1) * (d - 1));
  for (let i = 1; i < d; i++) for (let j = 1; j < d; j++) block[(i - 1) * (d - 1) + j - 1] = inner[i * d + j];
  const rInner = d > 1 ? procrustes(block, d - 1) : new Float64Array(0);
  const mid = new Float64Array(d * d);
  mid[0] = 1;
  for (let i = 1; i < d; i++) for (let j = 1; j < d; j++) mid[i * d + j] = rInner[(i - 1) * (d - 1) + j - 1];
  return mulAll(h, d, false, mid, false, h, true);
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

/** X Y Z for d x d row-major matrices, each optionally transposed, in float64. */
function mulAll(x: ArrayLike<number>, d: number, tx: boolean, y: ArrayLike<number>, ty: boolean, z: ArrayLike<number>, tz: boolean): Float64Array {
  return matMul(matMul(x, tx, y, ty, d), false, z, tz, d);
}

/** A B (each optionally transposed) for d x d row-major matrices, in float64. */
export function matMul(a: ArrayLike<number>, ta: boolean, b: ArrayLike<number>, tb: boolean, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = ta ? a[k * d + i] : a[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += aik * (tb ? b[j * d + k] : b[k * d + j]);
    }
  }
  return out;
}
