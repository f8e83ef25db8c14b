/**
 * tfjs-core's CommonJS build registers no gradient functions; the union package
 * `@tensorflow/tfjs` registers them on the shared tfjs-core instance (tfjs-node does the same).
 * Training and the straight-through estimator import this module for that side effect.
 *
 * It also gives the wasm backend the one kernel gather's gradient needs and wasm lacks,
 * UnsortedSegmentSum (the cpu backend and tfjs-node have it): the LM straight-through estimator
 * differentiates the engine's own forward passes, whose embeddings, grouped-query heads and
 * scored rows are gathers.
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

interface WasmLikeBackend {
  readSync(dataId: unknown): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
}

/** out[segment[i], ...] += x[i, ...] over the rows of x (segment ids 1-d, one per row). */
export function unsortedSegmentSumRows(x: ArrayLike<number>, rows: number, segments: ArrayLike<number>, numSegments: number): Float32Array {
  const width = rows === 0 ? 0 : x.length / rows;
  const out = new Float32Array(numSegments * width);
  for (let r = 0; r < rows; r++) {
    const s = segments[r];
    if (s < 0 || s >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
    const src = r * width;
    const dst = s * width;
    for (let j = 0; j < width; j++) out[dst + j] += x[src + j];
  }
  return out;
}

if (!tf.getKernel(tf.UnsortedSegmentSum, 'wasm')) {
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as unknown as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const { numSegments } = attrs as unknown as { numSegments: number };
      const be = backend as unknown as WasmLikeBackend;
      if (x.dtype !== 'float32' || segmentIds.shape.length !== 1) throw new Error('UnsortedSegmentSum (wasm): float32 rows with 1-d segment ids only');
      const values = unsortedSegmentSumRows(be.readSync(x.dataId), x.shape[0], be.readSync(segmentIds.dataId), numSegments);
      return be.makeOutput([numSegments, ...x.shape.slice(1)], 'float32', undefined, values);
    },
  });
}
