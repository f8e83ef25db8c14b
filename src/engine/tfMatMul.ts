/**
 * The engine's `MatMulABt` (src/core/checkpoint.ts) on tfjs: C = A·Bᵀ for weight matching's
 * cost matrices. Bᵀ is materialised with an explicit transpose because on `wasm`
 * `matMul(a, b, false, true)` runs 10-15x slower than `matMul(a, transpose(b))`
 * (measured, see /work/shared/notes/COMPUTE.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MatMulABt } from '../core/checkpoint';

function checkSizes(a: Float32Array, b: Float32Array, m: number, k: number, n: number): void {
  if (a.length !== m * k) throw new RangeError(`tfMatMul: a has ${a.length} values, expected ${m}x${k}`);
  if (b.length !== n * k) throw new RangeError(`tfMatMul: b has ${b.length} values, expected ${n}x${k}`);
}

/** Synchronous C = A·Bᵀ on the current tfjs backend (all intermediates freed by tidy). */
export function tfAbT(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  checkSizes(a, b, m, k, n);
  if (m === 0 || n === 0) return new Float32Array(m * n);
  if (k === 0) return new Float32Array(m * n);
  // Bᵀ first, in its own scope, so B's copy is freed before A's is made: the backend then holds
  // at most three operand-sized tensors (B and Bᵀ, then A, Bᵀ and C), not four (a wasm heap
  // never shrinks below its high-water mark).
  const bt = tf.tidy(() => tf.transpose(tf.tensor2d(b, [n, k])));
  let c: tf.Tensor;
  try {
    c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), bt));
  } finally {
    bt.dispose();
  }
  try {
    return c.dataSync() as Float32Array;
  } finally {
    c.dispose();
  }
}

/**
 * `tfAbT` by blocks of A's rows with Bᵀ made once (MatMulABt.abTByRows): each block is the same
 * `matMul(A rows, Bᵀ)` as `tfAbT` of those rows, so the same values.
 */
export function tfAbTByRows(a: Float32Array, b: Float32Array, m: number, k: number, n: number, rows: number, onBlock: (c: Float32Array, firstRow: number) => void): void {
  checkSizes(a, b, m, k, n);
  if (m === 0) return;
  if (n === 0 || k === 0) {
    for (let r0 = 0; r0 < m; r0 += rows) onBlock(new Float32Array(Math.min(rows, m - r0) * n), r0);
    return;
  }
  const bt = tf.tidy(() => tf.transpose(tf.tensor2d(b, [n, k])));
  try {
    for (let r0 = 0; r0 < m; r0 += rows) {
      const r1 = Math.min(m, r0 + rows);
      const c = tf.tidy(() => tf.matMul(tf.tensor2d(a.subarray(r0 * k, r1 * k), [r1 - r0, k]), bt));
      try {
        onBlock(c.dataSync() as Float32Array, r0);
      } finally {
        c.dispose();
      }
    }
  } finally {
    bt.dispose();
  }
}

/** The tfjs matrix product for `weightMatching({matmul})` and `similarityMatrix`. */
export const tfMatMul: MatMulABt = {
  abT: tfAbT,
  abTByRows: tfAbTByRows,
};
