/**
 * REPAIR (Jordan et al. 2022, arXiv 2211.08403, section 4) for networks without BatchNorm: in the
 * interpolated network (1 - lambda) A + lambda pi(B), each hidden unit's pre-activation mean and
 * standard deviation (over training examples) are rescaled to the interpolation of the two
 * endpoints' statistics, (1 - lambda) mu_A + lambda mu_B and (1 - lambda) sigma_A + lambda
 * sigma_B. The correction is an affine map per unit, folded into the layer's weights and bias,
 * applied layer by layer from the input so that each layer is measured after the ones before it
 * are repaired (the paper's "reset" of the statistics, without adding BatchNorm layers).
 * Implemented for MLPs: a chain of Linear layers with an activation between them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import type { Activation } from './modelConfig';
import { activate } from './layers';
import { ModelError } from './modelErrors';
import { executionOrder } from '../families/sequentialNet';
import { torchModules } from './params';

/** Per-unit pre-activation mean and standard deviation of each hidden Linear layer, by module name. */
export type UnitStats = ReadonlyMap<string, { readonly mean: Float64Array; readonly std: Float64Array }>;

/** The hidden Linear layers of an MLP in execution order (the last Linear, the classifier, is not repaired). */
export function repairLayers(tensors: TensorMap): { readonly hidden: string[]; readonly all: string[] } {
  const mods = executionOrder(torchModules(tensors).filter((m) => m.kind !== 'other'));
  const odd = mods.find((m) => m.kind !== 'linear');
  if (odd) throw new ModelError('Unsupported', `REPAIR is implemented for MLPs (Linear layers only), Vision Transformers and Hugging Face language models; \`${odd.name}\` is a ${odd.kind} layer`);
  const all = mods.map((m) => m.name);
  if (all.length < 2) throw new ModelError('Unsupported', 'REPAIR needs at least one hidden layer');
  return { hidden: all.slice(0, -1), all };
}

const weightOf = (t: TensorMap, layer: string): DenseTensor => {
  const w = t.get(`${layer}.weight`);
  if (!w) throw new ModelError('ShapeMismatch', `\`${layer}.weight\` is missing`);
  return w;
};

/** Pre-activations x W^T + b of one Linear layer. */
function linear(h: tf.Tensor2D, t: TensorMap, layer: string): tf.Tensor2D {
  const w = weightOf(t, layer);
  const y = tf.matMul(h, tf.tensor2d(w.data, [w.shape[0], w.shape[1]]), false, true);
  const b = t.get(`${layer}.bias`);
  return (b ? tf.add(y, tf.tensor1d(b.data)) : y) as tf.Tensor2D;
}

async function moments(pre: tf.Tensor2D): Promise<{ mean: Float64Array; std: Float64Array }> {
  const m = tf.moments(pre, 0);
  const [mean, variance] = await Promise.all([m.mean.data(), m.variance.data()]);
  m.mean.dispose();
  m.variance.dispose();
  return { mean: Float64Array.from(mean), std: Float64Array.from(variance, (v) => Math.sqrt(Math.max(0, v))) };
}

/** Pre-activation statistics of every hidden layer of the MLP `t` on inputs x [n, features]. */
export async function unitStats(t: TensorMap, x: tf.Tensor2D, activation: Activation): Promise<UnitStats> {
  const { hidden } = repairLayers(t);
  const out = new Map<string, { mean: Float64Array; std: Float64Array }>();
  let h = tf.clone(x);
  for (const layer of hidden) {
    const pre = tf.tidy(() => linear(h, t, layer));
    out.set(layer, await moments(pre));
    h.dispose();
    h = tf.tidy(() => activate(pre, activation) as tf.Tensor2D);
    pre.dispose();
  }
  h.dispose();
  return out;
}

/** Smallest standard deviation divided by (a dead unit is shifted, not scaled). */
const MIN_STD = 1e-8;

/**
 * The interpolated MLP `theta` at `lambda` with every hidden unit's pre-activation statistics on x
 * set to the interpolation of the endpoints' (`statsA`, `statsB`: of A and pi(B)).
 */
export async function repairInterpolated(theta: TensorMap, lambda: number, statsA: UnitStats, statsB: UnitStats, x: tf.Tensor2D, activation: Activation): Promise<Map<string, DenseTensor>> {
  return (await repairMlp(theta, lambda, statsA, statsB, x, activation)).tensors;
}

/** Per hidden layer: s and t of the pre-activations' correction y' = s y + t. */
export type MlpRepairCorrections = ReadonlyMap<string, { readonly scale: Float32Array; readonly shift: Float32Array }>;

/** repairInterpolated, with each hidden layer's correction as well as the weights it is folded into. */
export async function repairMlp(theta: TensorMap, lambda: number, statsA: UnitStats, statsB: UnitStats, x: tf.Tensor2D, activation: Activation): Promise<{ tensors: Map<string, DenseTensor>; corrections: MlpRepairCorrections }> {
  const { hidden } = repairLayers(theta);
  const out = new Map(theta);
  const corrections = new Map<string, { scale: Float32Array; shift: Float32Array }>();
  let h = tf.clone(x);
  try {
    for (const layer of hidden) {
      const sa = statsA.get(layer);
      const sb = statsB.get(layer);
      if (!sa || !sb) throw new ModelError('ShapeMismatch', `REPAIR: no endpoint statistics for \`${layer}\``);
      const pre = tf.tidy(() => linear(h, out, layer));
      const { mean, std } = await moments(pre);
      const units = mean.length;
      const scale = new Float32Array(units);
      const shift = new Float32Array(units);
      for (let i = 0; i < units; i++) {
        const targetMean = (1 - lambda) * sa.mean[i] + lambda * sb.mean[i];
        const targetStd = (1 - lambda) * sa.std[i] + lambda * sb.std[i];
        scale[i] = std[i] > MIN_STD ? targetStd / std[i] : 1;
        // y' = (y - mean) * scale + targetMean = y * scale + (targetMean - mean * scale)
        shift[i] = targetMean - mean[i] * scale[i];
      }
      corrections.set(layer, { scale, shift });
      const w = weightOf(out, layer);
      const cols = w.shape[1];
      const wNew = new Float32Array(w.data.length);
      for (let i = 0; i < units; i++) for (let k = 0; k < cols; k++) wNew[i * cols + k] = w.data[i * cols + k] * scale[i];
      const b = out.get(`${layer}.bias`);
      const bNew = Float32Array.from(shift, (s, i) => (b ? b.data[i] * scale[i] : 0) + s);
      out.set(`${layer}.weight`, { shape: w.shape, data: wNew });
      out.set(`${layer}.bias`, { shape: [units], data: bNew });
      h.dispose();
      h = tf.tidy(() => activate(tf.add(tf.mul(pre, tf.tensor1d(scale)), tf.tensor1d(shift)), activation) as tf.Tensor2D);
      pre.dispose();
    }
  } finally {
    h.dispose();
  }
  return { tensors: out, corrections };
}

/**
 * The MLP `theta` (unrepaired) with `corrections` applied to its hidden pre-activations in the
 * pass: the function REPAIR defines, independent of how repairMlp folds it into the weights.
 * Inputs [n, ...] are flattened; returns the logits.
 */
export function correctedMlpForward(theta: TensorMap, corrections: MlpRepairCorrections, activation: Activation): (x: tf.Tensor) => tf.Tensor2D {
  const { hidden, all } = repairLayers(theta);
  return (x) => tf.tidy(() => {
    let h = tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
    for (const layer of hidden) {
      const c = corrections.get(layer);
      if (!c) throw new ModelError('ShapeMismatch', `REPAIR: no correction for \`${layer}\``);
      h = activate(tf.add(tf.mul(linear(h, theta, layer), tf.tensor1d(c.scale)), tf.tensor1d(c.shift)), activation) as tf.Tensor2D;
    }
    return linear(h, theta, all[all.length - 1]);
  });
}
