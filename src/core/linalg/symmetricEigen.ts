/**
 * Eigendecomposition of a real symmetric matrix in float64: Householder reduction to
 * tridiagonal form, then the implicit QL iteration with Wilkinson-type shifts (tred2 / tql2 of
 * EISPACK, Bowdler, Martin, Reinsch & Wilkinson 1968, as in JAMA), rearranged for row-major
 * storage: the Householder updates are row dot products and row axpys, and the eigenvectors are
 * kept as rows so each plane rotation of the QL sweeps touches two contiguous rows. About
 * 2 n^3 flops for the reduction, 4/3 n^3 to form its orthogonal factor and 3 to 6 n^3 for the
 * rotations: a small constant next to one-sided Jacobi's 6 to 12 sweeps of 6 n^3 each.
 */

export interface SymmetricEigen {
  /** Eigenvalues, non-increasing. */
  readonly values: Float64Array;
  /** Eigenvectors as rows, n x n row-major: row i belongs to values[i] (orthonormal). */
  readonly vectors: Float64Array;
}

/** A = V^T diag(values) V for a symmetric row-major n x n A (only read; symmetry is assumed). */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values for a ${n} x ${n} matrix`);
  const { diag, off, q } = tridiagonalise(a, n);
  const zt = transposeSquare(q, n);
  tridiagonalQl(diag, off, zt, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => diag[y] - diag[x]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, i) => {
    values[i] = diag[src];
    vectors.set(zt.subarray(src * n, src * n + n), i * n);
  });
  return { values, vectors };
}

/** Q^T A Q = T with T tridiagonal (diag, off[i] = T[i][i+1], off[n-1] = 0) and Q orthogonal. */
function tridiagonalise(a0: ArrayLike<number>, n: number): { diag: Float64Array; off: Float64Array; q: Float64Array } {
  const a = Float64Array.from(a0);
  const diag = new Float64Array(n);
  const off = new Float64Array(n);
  const reflectors: { v: Float64Array; beta: number }[] = [];
  const p = new Float64Array(n);
  for (let k = 0; k + 2 < n; k++) {
    const m = n - k - 1;
    const v = a.slice(k * n + k + 1, k * n + n);
    let norm = 0;
    for (let i = 0; i < m; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    diag[k] = a[k * n + k];
    if (norm === 0) {
      off[k] = 0;
      reflectors.push({ v, beta: 0 });
      continue;
    }
    const alpha = v[0] > 0 ? -norm : norm;
    v[0] -= alpha;
    let vv = 0;
    for (let i = 0; i < m; i++) vv += v[i] * v[i];
    const beta = 2 / vv;
    off[k] = alpha;
    // p = beta S v on the trailing block S (rows and columns k+1..), then w = p - (beta/2)(p.v) v.
    const s0 = k + 1;
    let pv = 0;
    for (let i = 0; i < m; i++) {
      const row = (s0 + i) * n + s0;
      // Four partial sums: one running sum would wait on each addition.
      let acc0 = 0;
      let acc1 = 0;
      let acc2 = 0;
      let acc3 = 0;
      let j = 0;
      for (; j + 3 < m; j += 4) {
        acc0 += a[row + j] * v[j];
        acc1 += a[row + j + 1] * v[j + 1];
        acc2 += a[row + j + 2] * v[j + 2];
        acc3 += a[row + j + 3] * v[j + 3];
      }
      for (; j < m; j++) acc0 += a[row + j] * v[j];
      p[i] = beta * (acc0 + acc1 + (acc2 + acc3));
      pv += p[i] * v[i];
    }
    const kk = (beta / 2) * pv;
    for (let i = 0; i < m; i++) p[i] -= kk * v[i];
    // S -= v w^T + w v^T
    for (let i = 0; i < m; i++) {
      const row = (s0 + i) * n + s0;
      const vi = v[i];
      const wi = p[i];
      for (let j = 0; j < m; j++) a[row + j] -= vi * p[j] + wi * v[j];
    }
    reflectors.push({ v, beta });
  }
  if (n >= 2) {
    diag[n - 2] = a[(n - 2) * n + n - 2];
    off[n - 2] = a[(n - 2) * n + n - 1];
  }
  if (n >= 1) diag[n - 1] = a[(n - 1) * n + n - 1];
  // Q = H_0 H_1 ... H_{n-3}, accumulated from the right end: Q <- H_k Q touches rows and columns k+1..
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const t = new Float64Array(n);
  for (let k = reflectors.length - 1; k >= 0; k--) {
    const { v, beta } = reflectors[k];
    if (beta === 0) continue;
    const s0 = k + 1;
    const m = n - s0;
    // t = v^T Q (trailing block), four rows of Q per pass over t.
    t.fill(0, 0, m);
    let i = 0;
    for (; i + 3 < m; i += 4) {
      const v0 = v[i];
      const v1 = v[i + 1];
      const v2 = v[i + 2];
      const v3 = v[i + 3];
      const r0 = (s0 + i) * n + s0;
      const r1 = r0 + n;
      const r2 = r1 + n;
      const r3 = r2 + n;
      for (let j = 0; j < m; j++) t[j] += v0 * q[r0 + j] + v1 * q[r1 + j] + v2 * q[r2 + j] + v3 * q[r3 + j];
    }
    for (; i < m; i++) {
      const vi = v[i];
      const row = (s0 + i) * n + s0;
      for (let j = 0; j < m; j++) t[j] += vi * q[row + j];
    }
    for (let i = 0; i < m; i++) {
      const f = beta * v[i];
      if (f === 0) continue;
      const row = (s0 + i) * n + s0;
      for (let j = 0; j < m; j++) q[row + j] -= f * t[j];
    }
  }
  return { diag, off, q };
}

function transposeSquare(x: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = x[i * n + j];
  return t;
}

const MAX_ITERATIONS = 60;

/**
 * Implicit QL on the symmetric tridiagonal (diag, off), overwriting diag with the eigenvalues and
 * rotating the rows of zt (eigenvectors as rows). JAMA's tql2 with its columns as our rows.
 */
function tridiagonalQl(d: Float64Array, e: Float64Array, zt: Float64Array, n: number): void {
  const eps = 2.220446049250313e-16;
  let f = 0;
  let tst1 = 0;
  const cosines = new Float64Array(n);
  const sines = new Float64Array(n);
  const carry = new Float64Array(CHAIN_COLUMNS);
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_ITERATIONS) throw new Error('symmetricEigen: the QL iteration did not converge');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          cosines[i] = c;
          sines[i] = s;
        }
        rotateChain(zt, n, l, m, cosines, sines, carry);
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

const CHAIN_COLUMNS = 256;

/**
 * Applies one QL sweep's rotations (i = m-1 down to l, each mixing rows i and i+1 of zt) column
 * block by column block: row i+1 is final after rotation i and the new row i is only carried to
 * the next rotation, so each element is loaded and stored once per rotation instead of twice.
 */
function rotateChain(zt: Float64Array, n: number, l: number, m: number, cosines: Float64Array, sines: Float64Array, carry: Float64Array): void {
  for (let k0 = 0; k0 < n; k0 += CHAIN_COLUMNS) {
    const width = Math.min(CHAIN_COLUMNS, n - k0);
    carry.set(zt.subarray(m * n + k0, m * n + k0 + width));
    for (let i = m - 1; i >= l; i--) {
      const c = cosines[i];
      const s = sines[i];
      const ri = i * n + k0;
      const rj = ri + n;
      for (let k = 0; k < width; k++) {
        const zi = zt[ri + k];
        const zj = carry[k];
        zt[rj + k] = s * zi + c * zj;
        carry[k] = c * zi - s * zj;
      }
    }
    zt.set(carry.subarray(0, width), l * n + k0);
  }
}
