/**
 * The memory a forward pass holds per example, measured rather than modelled: whatever the
 * family, tfjs tracks every tensor it allocates, and tf.profile reports the peak. Used by the
 * batch plans (batchPlan.ts) of loss-curve evaluation and of activation matching.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions, Model } from './model';

/**
 * Bytes of tensors a forward pass of `model` holds at its peak, per example, and the part that
 * does not grow with the batch (weights uploaded on first use), measured with tf.profile on
 * probe batches of 1 and 3 zero examples.
 */
export function activationBytesPerExample(model: Model, opts: ForwardOptions = {}): Promise<{ perExample: number; fixed: number }> {
  return probeBytesPerExample(model.inputShape, (x) => {
    tf.tidy(() => {
      model.forward(x, opts);
    });
  });
}

/**
 * Bytes of tensors `run` holds at its peak on a batch, per example and fixed, measured with
 * tf.profile on probe batches of 1 and 3 zero examples of `inputShape` (`run` frees its tensors).
 */
export async function probeBytesPerExample(inputShape: readonly number[], run: (x: tf.Tensor) => void): Promise<{ perExample: number; fixed: number }> {
  const peak = async (n: number): Promise<number> => {
    const x = tf.zeros([n, ...inputShape]);
    try {
      const before = tf.memory().numBytes;
      const info = await tf.profile(() => run(x));
      return Math.max(0, info.peakBytes - before);
    } finally {
      x.dispose();
    }
  };
  const one = await peak(1);
  const three = await peak(3);
  const perExample = Math.max(1, (three - one) / 2);
  return { perExample, fixed: Math.max(0, one - perExample) };
}
