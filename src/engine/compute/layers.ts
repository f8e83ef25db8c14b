/** The building blocks the forward passes share, in PyTorch semantics on NHWC tensors. */
import * as tf from '@tensorflow/tfjs-core';
import type { Activation } from './modelConfig';
import type { BatchNormParams } from './params';
import { ModelError } from './modelErrors';

export interface ForwardOptions {
  /**
   * 'eval' (default) normalises with running statistics; 'batch' with the batch's own
   * statistics, as PyTorch's train mode does (used to recompute them, paper appendix A.4).
   */
  readonly batchNorm?: 'eval' | 'batch';
  /** Called in 'batch' mode with each BN layer's batch mean and unbiased variance. Read synchronously. */
  readonly onBatchStats?: (layer: string, mean: tf.Tensor1D, variance: tf.Tensor1D) => void;
  /**
   * Post-activation features of each permuted hidden layer, keyed by the weight tensor that
   * writes them ([n, units], or [n, h, w, channels] for convs). Read synchronously or tf.keep.
   * `axis` (default 0, the axis a weight writes): the features are laid out like this axis of
   * `weight` instead, e.g. a transformer's attention output before its projection (axis 1).
   * Features on a block axis (heads) are matched as blocks with their inner permutations.
   */
  readonly onActivation?: (weight: string, features: tf.Tensor, axis?: number) => void;
  /**
   * The first Linear layer's output (x W^T + b) computed elsewhere: used instead of computing
   * it. A barrier curve precomputes it for A and B once, since it is linear in the weights.
   */
  readonly firstLinearOutput?: tf.Tensor2D;
  /**
   * REPAIR (compute/vitRepair.ts): the pre-activation units of REPAIR site `site` (a ViT block's
   * MLP intermediate units), one row per token [tokens, units]; the returned units replace them.
   */
  readonly repair?: (site: number, units: tf.Tensor2D) => tf.Tensor2D;
}

export function activate(x: tf.Tensor, a: Activation): tf.Tensor {
  switch (a) {
    case 'relu':
      return tf.relu(x);
    case 'gelu':
      // Exact GELU, PyTorch's default: x * Phi(x).
      return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'identity':
      return x;
  }
}

/** BatchNorm over the last axis (channels of NHWC, features of [n, f]). */
export function batchNorm(x: tf.Tensor, layer: string, p: BatchNormParams, eps: number, opts: ForwardOptions): tf.Tensor {
  let mean: tf.Tensor = p.mean;
  let variance: tf.Tensor = p.variance;
  if (opts.batchNorm === 'batch') {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const m = tf.moments(x, axes);
    mean = m.mean;
    variance = m.variance;
    const count = x.size / p.size;
    // PyTorch normalises with the biased variance but records the unbiased one.
    opts.onBatchStats?.(layer, m.mean as tf.Tensor1D, tf.mul(m.variance, count / Math.max(1, count - 1)) as tf.Tensor1D);
  }
  let scale: tf.Tensor = tf.rsqrt(tf.add(variance, eps));
  if (p.gamma) scale = tf.mul(scale, p.gamma);
  let shift: tf.Tensor = tf.neg(tf.mul(mean, scale));
  if (p.beta) shift = tf.add(shift, p.beta);
  return tf.add(tf.mul(x, scale), shift);
}

/** LayerNorm over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D | undefined, eps: number): tf.Tensor {
  const m = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, m.mean), tf.mul(tf.rsqrt(tf.add(m.variance, eps)), gamma));
  return beta ? tf.add(y, beta) : y;
}

/** PyTorch Conv2d with symmetric zero padding (tfjs 'same' pads asymmetrically for stride 2). */
export function conv(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor1D | undefined, stride: number, pad: number): tf.Tensor4D {
  const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
  const y = tf.conv2d(xp, w, stride, 'valid');
  return bias ? tf.add(y, bias) : y;
}

/** PyTorch MaxPool2d(kernel, stride, padding) on non-negative input (after ReLU), so zero padding equals -inf padding. */
export function maxPool(x: tf.Tensor4D, kernel: number, stride: number, pad: number): tf.Tensor4D {
  const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
  return tf.maxPool(xp, kernel, stride, 'valid');
}

/** NHWC -> [n, C*H*W] in PyTorch's (NCHW) flatten order. */
export function flattenTorch(x: tf.Tensor): tf.Tensor2D {
  if (x.rank !== 4) return tf.reshape(x, [x.shape[0], -1]);
  return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]);
}

/**
 * Data to NHWC: [n, h, w] gets one channel, [n, C*H*W] is reshaped with `inputShape`,
 * [n, C, H, W] (PyTorch) is transposed, [n, H, W, C] passes when C matches and the NCHW reading does not.
 */
export function toNHWC(x: tf.Tensor, inChannels: number, inputShape: readonly number[] | undefined): tf.Tensor4D {
  let t = x;
  if (t.rank === 2 && inputShape && inputShape.length === 3) t = tf.reshape(t, [t.shape[0], ...inputShape]);
  if (t.rank === 3) t = tf.expandDims(t, 1);
  if (t.rank !== 4) throw new ModelError('ShapeMismatch', `conv net input must be [n, c, h, w], got [${x.shape.join(', ')}]`);
  if (t.shape[1] === inChannels) return tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
  if (t.shape[3] === inChannels) return t as tf.Tensor4D;
  throw new ModelError('ShapeMismatch', `conv net input [${x.shape.join(', ')}] has no axis of ${inChannels} channels`);
}
