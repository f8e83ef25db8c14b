/**
 * Mean cross-entropy and accuracy of a model over a data set, in batches uploaded once and
 * reused across models (a barrier curve evaluates the same data at every lambda).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { DataError } from '../../core/data';
import { throwIfCancelled } from '../errors';
import type { ForwardOptions, Model } from './model';
import { assertFeaturesFit } from './dataFit';

export interface Batches {
  readonly xs: tf.Tensor[];
  readonly ys: tf.Tensor1D[];
  readonly n: number;
  readonly classes: number;
  readonly source: string;
  dispose(): void;
}

/** Uploads `data` as tensors of at most `batchSize` examples (in order). */
export function toBatches(data: Dataset, batchSize: number): Batches {
  const per = data.xShape.slice(1);
  const stride = per.reduce((a, b) => a * b, 1);
  const xs: tf.Tensor[] = [];
  const ys: tf.Tensor1D[] = [];
  for (let s = 0; s < data.n; s += batchSize) {
    const e = Math.min(data.n, s + batchSize);
    xs.push(tf.tensor(data.x.subarray(s * stride, e * stride), [e - s, ...per]));
    ys.push(tf.tensor1d(data.y.subarray(s, e), 'int32'));
  }
  return {
    xs,
    ys,
    n: data.n,
    classes: data.classes,
    source: data.source,
    dispose: () => {
      for (const t of [...xs, ...ys]) t.dispose();
    },
  };
}

/** Sum of per-example cross-entropy and number of correct predictions on one batch (tensors, inside tidy). */
export function batchLossAndCorrect(logits: tf.Tensor2D, y: tf.Tensor1D): { lossSum: tf.Scalar; correct: tf.Scalar } {
  const classes = logits.shape[1];
  const logp = tf.logSoftmax(logits);
  const lossSum = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(y, classes)))) as tf.Scalar;
  const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32')) as tf.Scalar;
  return { lossSum, correct };
}

export interface Metrics {
  readonly loss: number;
  readonly acc: number;
}

/** Evaluates the model on every batch; checks `signal` between batches. */
export async function evaluateModel(
  model: Model,
  batches: Batches,
  signal?: AbortSignal,
  opts: ForwardOptions | ((batch: number) => ForwardOptions) = {},
): Promise<Metrics> {
  if (batches.classes > model.classes) {
    throw new DataError('LabelOutOfRange', `${batches.source}: labels go up to ${batches.classes - 1} but the model has ${model.classes} outputs`, batches.source);
  }
  if (batches.xs.length > 0) assertFeaturesFit(batches.xs[0].shape.slice(1), model.inputShape, batches.source);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < batches.xs.length; i++) {
    throwIfCancelled(signal, 'evaluation');
    const [l, c] = tf.tidy(() => {
      const r = batchLossAndCorrect(model.forward(batches.xs[i], typeof opts === 'function' ? opts(i) : opts), batches.ys[i]);
      return [r.lossSum, r.correct];
    });
    const [lv, cv] = await Promise.all([l.data(), c.data()]);
    l.dispose();
    c.dispose();
    loss += lv[0];
    correct += cv[0];
    // Yield so a cancel message queued on this thread can be seen between batches.
    await new Promise<void>((r) => setImmediate(r));
  }
  return { loss: loss / batches.n, acc: correct / batches.n };
}

/**
 * x W^T + b of one Linear layer for every batch (kept until `dispose`): along a path
 * theta(lambda) = (1 - lambda) A + lambda B the first layer's output is the same mix of A's and
 * B's outputs, so a barrier curve computes it twice instead of once per lambda.
 */
export async function linearOutputs(batches: Batches, weight: DenseTensor, bias: DenseTensor | undefined, signal?: AbortSignal): Promise<tf.Tensor2D[]> {
  if (batches.xs.length > 0) assertFeaturesFit(batches.xs[0].shape.slice(1), [weight.shape[1]], batches.source);
  const wt = tf.tidy(() => tf.transpose(tf.tensor2d(weight.data, [weight.shape[0], weight.shape[1]])));
  const b = bias ? tf.tensor1d(bias.data) : undefined;
  const out: tf.Tensor2D[] = [];
  try {
    for (const x of batches.xs) {
      throwIfCancelled(signal, 'evaluation');
      out.push(
        tf.tidy(() => {
          const y = tf.matMul(tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D, wt);
          return (b ? tf.add(y, b) : y) as tf.Tensor2D;
        }),
      );
      await new Promise<void>((r) => setImmediate(r));
    }
    return out;
  } catch (e) {
    for (const t of out) t.dispose();
    throw e;
  } finally {
    wt.dispose();
    b?.dispose();
  }
}
