/**
 * gradients.ts gives the wasm backend UnsortedSegmentSum, the kernel gather's gradient needs: its
 * sums equal the cpu backend's, and the gradient of an embedding lookup (repeated ids, an
 * out-of-range-free batch) on wasm equals the one on cpu.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../../src/engine/gradients';
import { initBackend } from '../../../src/engine/backend';
import { unsortedSegmentSumRows } from '../../../src/engine/gradients';

function gatherGradient(): { sums: Float32Array; grad: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const ids = tf.tensor1d([2, 0, 2, 1], 'int32');
    const sums = tf.unsortedSegmentSum(x, ids, 3).dataSync() as Float32Array;
    const table = tf.tensor2d([0.5, -1, 2, 0.25, 3, 1, -2, 0.75, 1.5, 2], [5, 2]);
    const rows = tf.tensor1d([4, 1, 1, 3, 0, 1], 'int32');
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.square(tf.gather(t, rows, 0)), tf.range(1, 13).reshape([6, 2]))))(table);
    return { sums: Float32Array.from(sums), grad: Float32Array.from(g.dataSync()) };
  });
}

describe('UnsortedSegmentSum on wasm', () => {
  it('sums rows by segment as the plain definition does', () => {
    assert.deepEqual([...unsortedSegmentSumRows([1, 2, 3, 4, 5, 6], 3, [1, 1, 0], 3)], [5, 6, 4, 6, 0, 0]);
  });

  it('gives gather the same gradient as the cpu backend', async () => {
    await tf.setBackend('cpu');
    const cpu = gatherGradient();
    await initBackend('wasm');
    assert.equal(tf.getBackend(), 'wasm');
    const wasm = gatherGradient();
    assert.deepEqual(wasm.sums, cpu.sums);
    assert.deepEqual(wasm.grad, cpu.grad);
  });
});
