/**
 * Plain TypeScript C = A . B^T for row-major A [m, k] and B [n, k]: the fallback (and test)
 * implementation of the engine's `MatMulABt`. Every output cell is a dot product of two
 * contiguous rows, computed 4 x 4 cells at a time (16 float64 accumulators, 8 loads per k)
 * over blocks of B rows sized to stay in the L2 cache while A's rows stream past.
 */
import type { MatMulABt } from '../checkpoint';

/** Bytes of B rows kept hot per block. */
const B_BLOCK_BYTES = 256 * 1024;

export function matMulABt(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  if (a.length < m * k || b.length < n * k) {
    throw new RangeError(`matMulABt: operands hold ${a.length} and ${b.length} values, need ${m}x${k} and ${n}x${k}`);
  }
  const c = new Float32Array(m * n);
  if (k === 0) return c;
  const jBlock = Math.max(4, Math.floor(B_BLOCK_BYTES / (4 * k)) & ~3);
  const m4 = m - (m % 4);
  for (let j0 = 0; j0 < n; j0 += jBlock) {
    const j1 = Math.min(n, j0 + jBlock);
    const j4 = j0 + ((j1 - j0) - ((j1 - j0) % 4));
    for (let i = 0; i < m4; i += 4) {
      const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
      for (let j = j0; j < j4; j += 4) {
        const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
        let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
        let s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let t = 0; t < k; t++) {
          const x0 = a[a0 + t], x1 = a[a1 + t], x2 = a[a2 + t], x3 = a[a3 + t];
          const y0 = b[b0 + t], y1 = b[b1 + t], y2 = b[b2 + t], y3 = b[b3 + t];
          s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
          s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
          s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
          s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
        }
        const c0 = i * n + j, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
        c[c0] = s00; c[c0 + 1] = s01; c[c0 + 2] = s02; c[c0 + 3] = s03;
        c[c1] = s10; c[c1 + 1] = s11; c[c1 + 2] = s12; c[c1 + 3] = s13;
        c[c2] = s20; c[c2 + 1] = s21; c[c2 + 2] = s22; c[c2 + 3] = s23;
        c[c3] = s30; c[c3 + 1] = s31; c[c3 + 2] = s32; c[c3 + 3] = s33;
      }
      for (let r = i; r < i + 4; r++) {
        for (let j = j4; j < j1; j++) c[r * n + j] = dot(a, r * k, b, j * k, k);
      }
    }
    for (let r = m4; r < m; r++) {
      for (let j = j0; j < j1; j++) c[r * n + j] = dot(a, r * k, b, j * k, k);
    }
  }
  return c;
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, k: number): number {
  let s = 0;
  for (let t = 0; t < k; t++) s += a[ao + t] * b[bo + t];
  return s;
}

/** The plain-TS `MatMulABt` (synchronous). */
export const jsMatMul: MatMulABt = { abT: matMulABt };
