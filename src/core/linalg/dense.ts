/**
 * Dense float64 kernels for the Procrustes path: a cache-blocked row-major product and a
 * transpose. Plain loops in the i-k-j order (the innermost loop runs along contiguous rows of B
 * and C), four rows of B at a time so each element of C is loaded and stored once per four
 * multiply-adds, and tiles of B small enough to stay in cache across the rows of A.
 */

const K_TILE = 128;
const J_TILE = 512;

/** C = A B for a row-major m x k A and k x n B, in float64. */
export function gemm(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  if (a.length !== m * k || b.length !== k * n) throw new RangeError(`gemm: ${a.length} and ${b.length} values for ${m}x${k} times ${k}x${n}`);
  const c = new Float64Array(m * n);
  for (let j0 = 0; j0 < n; j0 += J_TILE) {
    const j1 = Math.min(n, j0 + J_TILE);
    for (let k0 = 0; k0 < k; k0 += K_TILE) {
      const k1 = Math.min(k, k0 + K_TILE);
      for (let i = 0; i < m; i++) {
        const ci = i * n;
        const ai = i * k;
        let p = k0;
        for (; p + 3 < k1; p += 4) {
          const a0 = a[ai + p];
          const a1 = a[ai + p + 1];
          const a2 = a[ai + p + 2];
          const a3 = a[ai + p + 3];
          const b0 = p * n;
          const b1 = b0 + n;
          const b2 = b1 + n;
          const b3 = b2 + n;
          for (let j = j0; j < j1; j++) c[ci + j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
        }
        for (; p < k1; p++) {
          const ap = a[ai + p];
          const bp = p * n;
          for (let j = j0; j < j1; j++) c[ci + j] += ap * b[bp + j];
        }
      }
    }
  }
  return c;
}

/** The transpose of a row-major m x n matrix (n x m, row-major). */
export function transpose(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  const B = 32;
  for (let i0 = 0; i0 < m; i0 += B) {
    for (let j0 = 0; j0 < n; j0 += B) {
      const i1 = Math.min(m, i0 + B);
      const j1 = Math.min(n, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * m + i] = a[i * n + j];
    }
  }
  return t;
}
