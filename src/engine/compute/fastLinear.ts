/**
 * x . W with a gradient that never asks the backend for a transposed matMul: on wasm,
 * matMul with transposeA/transposeB runs 10-15x slower than an explicit transpose followed by
 * a plain matMul (notes/COMPUTE.md), and tfjs's built-in MatMul gradient uses exactly those.
 */
import * as tf from '@tensorflow/tfjs-core';

const matMulFastGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy as tf.Tensor2D)];
    },
  };
});

/** y = x . w (x [n, in], w [in, out]) with transpose-free matMuls in both directions. */
export function matMulFast(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return matMulFastGrad(x, w) as tf.Tensor2D;
}

/**
 * y = x . w for a layer whose input needs no gradient (the data): only dL/dw = x^T dy is
 * computed, saving the [n, in] input gradient the generic version would produce.
 */
export function matMulFastInputConst(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [wt] = args as [tf.Tensor];
    return {
      value: tf.matMul(x, wt as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor) => [tf.matMul(tf.transpose(x), dy as tf.Tensor2D)],
    };
  });
  return f(w) as tf.Tensor2D;
}
