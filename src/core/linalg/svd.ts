/**
 * Singular value decomposition in float64 by one-sided Jacobi (Hestenes 1958; Demmel & Veselić
 * 1992): plane rotations orthogonalise the columns of A, their product is V, the column norms are
 * the singular values and the normalised columns are U. Chosen over a library (ml-matrix's
 * Golub-Kahan port of JAMA, say) because it is short enough to check by eye, has no dependency,
 * and gives singular vectors accurate to float64 even for tiny singular values, which is what
 * Procrustes needs: R = U V^T is read from the vectors, not the values. Its cost is
 * O(n^3) per sweep (6 to 12 sweeps): measured 17 ms at d = 64 and 16 s at d = 768, too slow for
 * wide models, so `procrustes` uses the symmetric eigensolver (procrustes.ts) and this SVD is the
 * float64 reference it is tested against (`procrustesByJacobi`).
 */

export interface Svd {
  /** Left singular vectors, m x n row-major (orthonormal columns, completed where sigma = 0). */
  readonly u: Float64Array;
  /** Singular values, n of them, non-increasing. */
  readonly s: Float64Array;
  /** Right singular vectors, n x n row-major (orthogonal). */
  readonly v: Float64Array;
  readonly m: number;
  readonly n: number;
}

const MAX_SWEEPS = 60;

/** A = U diag(s) V^T for a row-major m x n matrix with m >= n. */
export function svd(a: ArrayLike<number>, m: number, n: number): Svd {
  if (m < n) throw new RangeError(`svd: ${m} x ${n} has fewer rows than columns (transpose it)`);
  if (a.length !== m * n) throw new RangeError(`svd: ${a.length} values for a ${m} x ${n} matrix`);
  // Column-major copies: each rotation touches two contiguous columns.
  const w = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[j * m + i] = a[i * n + j];
  const vc = new Float64Array(n * n);
  for (let j = 0; j < n; j++) vc[j * n + j] = 1;
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) norms[j] = dot(w, j * m, j * m, m);
  const eps = 2.220446049250313e-16;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = norms[p];
        const beta = norms[q];
        const gamma = dot(w, p * m, q * m, m);
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(w, p * m, q * m, m, c, s);
        rotate(vc, p * n, q * n, n, c, s);
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
      }
    }
    // Recompute the norms from the columns so rounding in the updates does not accumulate.
    for (let j = 0; j < n; j++) norms[j] = dot(w, j * m, j * m, m);
    if (!rotated) break;
  }
  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const s = new Float64Array(n);
  const u = new Float64Array(m * n);
  const v = new Float64Array(n * n);
  const scale = Math.sqrt(norms[order[0]] ?? 0);
  const zero: number[] = [];
  order.forEach((src, k) => {
    const sigma = Math.sqrt(norms[src]);
    s[k] = sigma;
    for (let i = 0; i < n; i++) v[i * n + k] = vc[src * n + i];
    if (sigma <= scale * m * eps || sigma === 0) {
      zero.push(k);
      return;
    }
    for (let i = 0; i < m; i++) u[i * n + k] = w[src * m + i] / sigma;
  });
  completeColumns(u, m, n, zero);
  return { u, s, v, m, n };
}

function dot(x: Float64Array, a: number, b: number, len: number): number {
  let acc = 0;
  for (let i = 0; i < len; i++) acc += x[a + i] * x[b + i];
  return acc;
}

function rotate(x: Float64Array, a: number, b: number, len: number, c: number, s: number): void {
  for (let i = 0; i < len; i++) {
    const xp = x[a + i];
    const xq = x[b + i];
    x[a + i] = c * xp - s * xq;
    x[b + i] = s * xp + c * xq;
  }
}

/**
 * Fills the columns `missing` of the row-major m x n `u` (sigma = 0: any unit vector orthogonal to
 * the others will do) by Gram-Schmidt, twice, of the standard basis vectors against the others.
 */
function completeColumns(u: Float64Array, m: number, n: number, missing: readonly number[]): void {
  if (missing.length === 0) return;
  const filled = Array.from({ length: n }, (_, k) => !missing.includes(k));
  let candidate = 0;
  for (const k of missing) {
    for (; candidate < m; candidate++) {
      const col = new Float64Array(m);
      col[candidate] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (let j = 0; j < n; j++) {
          if (!filled[j]) continue;
          let d = 0;
          for (let i = 0; i < m; i++) d += u[i * n + j] * col[i];
          for (let i = 0; i < m; i++) col[i] -= d * u[i * n + j];
        }
      }
      const len = Math.sqrt(col.reduce((a, x) => a + x * x, 0));
      if (len > 0.5) {
        for (let i = 0; i < m; i++) u[i * n + k] = col[i] / len;
        filled[k] = true;
        candidate++;
        break;
      }
    }
  }
}
