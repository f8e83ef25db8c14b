/**
 * Trains a ReLU MLP classifier (the demo's and the tests' models): PyTorch's default Linear
 * initialisation U(-1/sqrt(in), 1/sqrt(in)) from a seeded PRNG, Adam, seeded shuffling,
 * softmax cross-entropy. Weights are kept pre-transposed ([in, out]) during training and
 * returned in PyTorch layout (`layers.{i}.weight` [out, in], `layers.{i}.bias`).
 */
import * as tf from '@tensorflow/tfjs-core';
// Gradient functions are registered separately from the ops (tfjs-core keeps them tree-shakable).
import '../gradients';
import type { DenseTensor, Progress } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { mulberry32, shuffleInPlace } from '../../core/matching/prng';
import { throwIfCancelled } from '../errors';
import { batchLossAndCorrect } from './evaluate';
import { matMulFast, matMulFastInputConst } from './fastLinear';
import { ModelError } from './modelErrors';

export interface TrainOptions {
  readonly widths: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Report progress every this many batches (default 20). */
  readonly progressEvery?: number;
}

export interface TrainedMlp {
  readonly tensors: Map<string, DenseTensor>;
  /** Mean training loss over the last epoch. */
  readonly finalLoss: number;
  readonly epochSeconds: number[];
}

/** PyTorch nn.Linear's default init (kaiming_uniform with a=sqrt(5)): weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
export function initMlp(widths: readonly number[], seed: number): Map<string, DenseTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, DenseTensor>();
  for (let i = 0; i + 1 < widths.length; i++) {
    const [inp, o] = [widths[i], widths[i + 1]];
    const bound = 1 / Math.sqrt(inp);
    const w = new Float32Array(o * inp);
    for (let k = 0; k < w.length; k++) w[k] = (2 * rand() - 1) * bound;
    const b = new Float32Array(o);
    for (let k = 0; k < o; k++) b[k] = (2 * rand() - 1) * bound;
    out.set(`layers.${i}.weight`, { shape: [o, inp], data: w });
    out.set(`layers.${i}.bias`, { shape: [o], data: b });
  }
  return out;
}

export async function trainMlp(data: Dataset, opts: TrainOptions): Promise<TrainedMlp> {
  const { widths } = opts;
  const features = data.xShape.slice(1).reduce((a, b) => a * b, 1);
  if (widths.length < 2) throw new ModelError('ShapeMismatch', `train: widths must list at least an input and an output size, got [${widths.join(', ')}]`);
  if (widths[0] !== features) throw new ModelError('ShapeMismatch', `${data.source}: ${features} features per example, but the first width is ${widths[0]}`, data.source);
  if (data.classes > widths[widths.length - 1]) throw new ModelError('ShapeMismatch', `${data.source}: labels go up to ${data.classes - 1}, but the last width is ${widths[widths.length - 1]}`, data.source);
  const init = initMlp(widths, opts.seed);
  const layers = widths.length - 1;
  const ws: tf.Variable[] = [];
  const bs: tf.Variable[] = [];
  for (let i = 0; i < layers; i++) {
    const w = init.get(`layers.${i}.weight`)!;
    // Inside tidy: tf.variable shares its initial value's data, and tidy frees the initial tensor.
    ws.push(tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(w.data, [w.shape[0], w.shape[1]])))));
    bs.push(tf.tidy(() => tf.variable(tf.tensor1d(init.get(`layers.${i}.bias`)!.data))));
  }
  const forward = (x: tf.Tensor2D): tf.Tensor2D => {
    let h: tf.Tensor2D = x;
    for (let i = 0; i < layers; i++) {
      h = tf.add(i === 0 ? matMulFastInputConst(h, ws[i] as tf.Tensor2D) : matMulFast(h, ws[i] as tf.Tensor2D), bs[i]);
      if (i < layers - 1) h = tf.relu(h);
    }
    return h;
  };
  const optimizer = tf.train.adam(opts.learningRate);
  const rand = mulberry32(opts.seed ^ 0x5eed);
  const order = Int32Array.from({ length: data.n }, (_, i) => i);
  const batchX = new Float32Array(opts.batchSize * features);
  const batchY = new Int32Array(opts.batchSize);
  const batchesPerEpoch = Math.ceil(data.n / opts.batchSize);
  const every = opts.progressEvery ?? 20;
  const epochSeconds: number[] = [];
  let finalLoss = NaN;
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const t0 = performance.now();
      shuffleInPlace(order, rand);
      let lossSum = 0;
      let seen = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        throwIfCancelled(opts.signal, 'training');
        const s = b * opts.batchSize;
        const m = Math.min(opts.batchSize, data.n - s);
        for (let r = 0; r < m; r++) {
          const src = order[s + r];
          batchX.set(data.x.subarray(src * features, (src + 1) * features), r * features);
          batchY[r] = data.y[src];
        }
        const loss = tf.tidy(() => {
          const x = tf.tensor2d(batchX.subarray(0, m * features), [m, features]);
          const y = tf.tensor1d(batchY.subarray(0, m), 'int32');
          return optimizer.minimize(() => tf.div(batchLossAndCorrect(forward(x), y).lossSum, m) as tf.Scalar, true)!;
        });
        const lv = (await loss.data())[0];
        loss.dispose();
        lossSum += lv * m;
        seen += m;
        if ((b + 1) % every === 0 || b === batchesPerEpoch - 1) {
          opts.onProgress?.({
            stage: 'training',
            fraction: (epoch * batchesPerEpoch + b + 1) / (opts.epochs * batchesPerEpoch),
            iteration: epoch + 1,
            objective: lossSum / seen,
            message: `epoch ${epoch + 1}/${opts.epochs}, batch ${b + 1}/${batchesPerEpoch}, loss ${(lossSum / seen).toFixed(4)}`,
          });
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      finalLoss = lossSum / seen;
      epochSeconds.push((performance.now() - t0) / 1000);
    }
    const tensors = new Map<string, DenseTensor>();
    for (let i = 0; i < layers; i++) {
      const w = tf.tidy(() => tf.transpose(ws[i]));
      tensors.set(`layers.${i}.weight`, { shape: [widths[i + 1], widths[i]], data: w.dataSync() as Float32Array });
      w.dispose();
      tensors.set(`layers.${i}.bias`, { shape: [widths[i + 1]], data: bs[i].dataSync() as Float32Array });
    }
    return { tensors, finalLoss, epochSeconds };
  } finally {
    optimizer.dispose();
    for (const v of [...ws, ...bs]) v.dispose();
  }
}
