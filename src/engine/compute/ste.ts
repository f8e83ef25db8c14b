/**
 * Straight-through estimator matching (Git Re-Basin section 3.3, Algorithm 2): learn a proxy
 * theta~ (initialised at A, as in the paper) whose projection onto B's permutation orbit,
 * pi = weight matching of B onto theta~, minimises the loss at the midpoint (A + pi(B)) / 2.
 * The forward pass uses pi(B); the gradient flows to theta~ straight through the projection
 * (pi(B) = theta~ + stopgrad(pi(B) - theta~)). Adam on theta~; the result is the final projection.
 * Feed-forward MLPs only (the midpoint needs a differentiable forward pass).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients';
import type { MatMulABt, PermSpec, Progress, TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { applyPermutations } from '../../core/matching/permute';
import { mulberry32, shuffleInPlace } from '../../core/matching/prng';
import { weightMatching } from '../../core/matching/weightMatching';
import { throwIfCancelled } from '../errors';
import { batchLossAndCorrect } from './evaluate';
import { matMulFast, matMulFastInputConst } from './fastLinear';
import type { Activation } from './modelConfig';
import { activate } from './layers';
import { ModelError } from './modelErrors';
import { torchModules } from './params';
import { SteProxy } from './steProxy';

export interface SteOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  /** Weight-matching sweeps per projection. */
  readonly maxIter: number;
  readonly matmul: MatMulABt;
  readonly activation?: Activation;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
}

export interface SteResult {
  readonly perms: Record<string, Int32Array>;
  /** Mean midpoint training loss of each epoch. */
  readonly epochLoss: number[];
}

interface Layer {
  readonly weight: string;
  readonly bias?: string;
}

/** The Linear layers of an MLP in order (throws for anything else). */
function mlpLayers(tensors: TensorMap): Layer[] {
  const mods = torchModules(tensors);
  const bad = mods.find((m) => m.kind !== 'linear');
  if (bad) throw new ModelError('Unsupported', `ste matching supports MLPs of Linear layers only; \`${bad.name}\` is ${bad.kind === 'other' ? 'not a Linear layer' : `a ${bad.kind} layer`}`);
  return mods.map((m) => ({ weight: `${m.name}.weight`, bias: m.params.has('bias') ? `${m.name}.bias` : undefined }));
}

export async function steMatching(spec: PermSpec, a: TensorMap, b: TensorMap, data: Dataset, opts: SteOptions): Promise<SteResult> {
  const layers = mlpLayers(a);
  const names = layers.flatMap((l) => (l.bias ? [l.weight, l.bias] : [l.weight]));
  const act = opts.activation ?? 'relu';
  const features = data.xShape.slice(1).reduce((x, y) => x * y, 1);
  const ste = new SteProxy(a, names, opts.learningRate);
  const rand = mulberry32(opts.seed ^ 0x57e);
  const order = Int32Array.from({ length: data.n }, (_, i) => i);
  const bx = new Float32Array(opts.batchSize * features);
  const by = new Int32Array(opts.batchSize);
  let perms: Record<string, Int32Array> | undefined;
  const project = async (): Promise<Record<string, Int32Array>> => {
    const r = await weightMatching(spec, ste.host(), b, { seed: opts.seed, maxIter: opts.maxIter, matmul: opts.matmul, signal: opts.signal, initPerms: perms });
    return r.perms;
  };
  const epochLoss: number[] = [];
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      shuffleInPlace(order, rand);
      let lossSum = 0;
      let seen = 0;
      for (let s = 0; s < data.n; s += opts.batchSize) {
        throwIfCancelled(opts.signal, 'ste matching');
        perms = await project();
        const piB = applyPermutations(spec, perms, b);
        const m = Math.min(opts.batchSize, data.n - s);
        for (let r = 0; r < m; r++) {
          const src = order[s + r];
          bx.set(data.x.subarray(src * features, (src + 1) * features), r * features);
          by[r] = data.y[src];
        }
        const loss = tf.tidy(() => {
          const offsets = ste.offsets(piB);
          const x = tf.tensor2d(bx.subarray(0, m * features), [m, features]);
          const y = tf.tensor1d(by.subarray(0, m), 'int32');
          return ste.minimize(() => {
            const mid = (n: string): tf.Tensor => ste.midpoint(n, offsets);
            let h: tf.Tensor2D = x;
            layers.forEach((l, i) => {
              h = i === 0 ? matMulFastInputConst(h, tf.transpose(mid(l.weight)) as tf.Tensor2D) : matMulFast(h, tf.transpose(mid(l.weight)) as tf.Tensor2D);
              if (l.bias) h = tf.add(h, mid(l.bias));
              if (i < layers.length - 1) h = activate(h, act) as tf.Tensor2D;
            });
            return tf.div(batchLossAndCorrect(h, y).lossSum, m) as tf.Scalar;
          });
        });
        lossSum += (await loss.data())[0] * m;
        seen += m;
        loss.dispose();
        await new Promise<void>((r) => setImmediate(r));
      }
      epochLoss.push(lossSum / seen);
      opts.onProgress?.({ stage: 'ste', fraction: (epoch + 1) / opts.epochs, iteration: epoch + 1, objective: lossSum / seen, message: `Straight-through estimator: epoch ${epoch + 1} of ${opts.epochs}, midpoint loss ${(lossSum / seen).toFixed(4)}` });
    }
    perms = await project();
    return { perms, epochLoss };
  } finally {
    ste.dispose();
  }
}
