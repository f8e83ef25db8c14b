/**
 * REPAIR (Jordan et al. 2022, arXiv 2211.08403) for language models of every family that lists
 * its REPAIR sites (LmArchitecture.repairSites): in the interpolated model
 * (1 - lambda) A + lambda pi(B), the units of each site get, per unit and over every token of the
 * first sequences of the data, the mean and standard deviation interpolated from A's and pi(B)'s,
 * (1 - lambda) mu_A + lambda mu_B and (1 - lambda) sigma_A + lambda sigma_B.
 *
 * Sites: GPT-2 and BERT, each block's MLP pre-activations (the up projection's output); the Llama
 * family, each block's gated units SiLU(gate) x up (down_proj's input); Mixtral, each expert's
 * gated units. The correction u' = s u + t is affine per unit and is exact in the weights: the
 * scale multiplies the producer's row/column and bias of the unit (for gated units, up_proj's
 * row: SiLU(gate) x (s up) = s (SiLU(gate) x up)); the shift goes into the producer's bias, or
 * through down_proj into its bias (W (s u + t) + b = W s u + (b + W t)). A site without such a
 * bias in the checkpoint (Llama without `mlp_bias`, Mixtral's experts) takes the scale only,
 * chosen to match the standard deviation; its mean is then s mu, not the target (adding a bias
 * tensor would change B's architecture).
 *
 * One pass per lambda: the sample's sequences run as one batch, and at each site the hook
 * measures the units, corrects them in the pass (so later sites are measured on a repaired
 * model, the paper's reset layer by layer) and records s and t, folded into the weights after
 * (repairLmInterpolated, for a model to keep) or applied to the units of the evaluation's later
 * batches in the same pass (evaluateRepairedLm, for a barrier point's loss).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';
import type { LmConfig } from './config';
import { evaluateLm, evaluateLmWeights, lowerBound, type LmEvaluateOptions, type LmEvaluationInput, type LmMetrics } from './evaluate';
import { lmArchitecture } from '../families/registry';
import type { LmRepairSite } from './architecture';
import { namePrefix, type LmFeatureHooks } from './layers';
import { planLmBatches } from './memoryPlan';
import { buildLm } from './model';

/** Per REPAIR site: the units' mean and standard deviation. */
export type LmUnitStats = readonly { readonly mean: Float64Array; readonly std: Float64Array }[];

/** Tokens used for the statistics: at most this many sequences of the data. */
export const REPAIR_SEQUENCES = 64;

/** The family's REPAIR sites in `t`; one line when it has none. */
export function lmRepairSites(t: TensorMap, config: LmConfig): readonly LmRepairSite[] {
  const sites = lmArchitecture(config.family).repairSites;
  if (!sites) throw new ModelError('Unsupported', `REPAIR is not implemented for ${config.modelType} language models`);
  return sites(namePrefix(t, config, config.file), config, t);
}

/** Sequences REPAIR measures: the first of the data, as many as one batch of the memory plan holds, at most REPAIR_SEQUENCES. */
export function repairSequences(config: LmConfig, input: LmEvaluationInput, budgetBytes?: number): number {
  return Math.max(1, Math.min(input.n, REPAIR_SEQUENCES, planLmBatches(config, input.t, budgetBytes).sequences));
}

/** Sums of the units and of their squares per unit, added to `acc` (float64). */
export function accumulate(acc: { sum: Float64Array; sq: Float64Array } | undefined, u: tf.Tensor2D): { sum: Float64Array; sq: Float64Array } {
  const width = u.shape[1];
  const into = acc ?? { sum: new Float64Array(width), sq: new Float64Array(width) };
  const [a, b] = tf.tidy(() => [tf.sum(u, 0), tf.sum(tf.square(u), 0)]);
  const sa = a.dataSync();
  const sb = b.dataSync();
  a.dispose();
  b.dispose();
  for (let j = 0; j < width; j++) {
    into.sum[j] += sa[j];
    into.sq[j] += sb[j];
  }
  return into;
}

/** Per unit: the mean and standard deviation of `count` rows accumulated by `accumulate`. */
export function finish(acc: { sum: Float64Array; sq: Float64Array }, count: number): { mean: Float64Array; std: Float64Array } {
  const mean = Float64Array.from(acc.sum, (v) => v / count);
  return { mean, std: Float64Array.from(acc.sq, (v, j) => Math.sqrt(Math.max(0, v / count - mean[j] * mean[j]))) };
}

function batchIds(input: LmEvaluationInput, s0: number, s1: number): tf.Tensor2D {
  return tf.tensor2d(input.input.subarray(s0 * input.t, s1 * input.t), [s1 - s0, input.t], 'int32');
}

/** Statistics of every REPAIR site of the model `t` on the first `sequences` of the data (one pass). */
export async function lmUnitStats(t: TensorMap, config: LmConfig, input: LmEvaluationInput, sequences = Math.min(input.n, REPAIR_SEQUENCES)): Promise<LmUnitStats> {
  const sites = lmRepairSites(t, config);
  const acc: ({ sum: Float64Array; sq: Float64Array } | undefined)[] = sites.map(() => undefined);
  const model = buildLm(t, config);
  try {
    for (let s0 = 0; s0 < sequences; s0 += 8) {
      const s1 = Math.min(sequences, s0 + 8);
      tf.tidy(() => {
        model.hidden(batchIds(input, s0, s1), {
          repair: (site, u) => {
            acc[site] = accumulate(acc[site], u);
            return u;
          },
        }).dispose();
      });
    }
  } finally {
    model.dispose();
  }
  return acc.map((a, i) => {
    if (!a) throw new ModelError('Unsupported', `REPAIR site ${i} of ${config.modelType} was not reached by the forward pass`);
    return finish(a, sequences * input.t);
  });
}

/** Per unit: s and t of u' = s u + t. */
export interface LmRepairCorrection {
  readonly scale: Float64Array;
  readonly shift?: Float64Array;
}

/** Multiplies index offset + j along `axis` of `x` by scale[j]. */
function scaleAxis(x: DenseTensor, axis: number, offset: number, scale: Float64Array): DenseTensor {
  const stride = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const dim = x.shape[axis];
  const data = Float32Array.from(x.data, (v, k) => {
    const j = (Math.floor(k / stride) % dim) - offset;
    return j >= 0 && j < scale.length ? v * scale[j] : v;
  });
  return { shape: x.shape, data };
}

/** Folds one site's correction into `out` (see the module comment). */
export function fold(out: Map<string, DenseTensor>, site: LmRepairSite, c: LmRepairCorrection): void {
  for (const [name, axis, offset = 0] of site.scale) {
    const x = out.get(name);
    if (x) out.set(name, scaleAxis(x, axis, offset, c.scale));
  }
  if (!c.shift || !site.shift) return;
  const t = c.shift;
  const b = out.get(site.shift.bias)!;
  const data = Float32Array.from(b.data);
  if (site.shift.through === undefined) {
    for (let j = 0; j < t.length; j++) data[j] += t[j];
  } else {
    // b_o + sum_j W[o, j] t_j, W 2-D with the units on `axis`.
    const w = out.get(site.shift.through);
    if (!w || w.shape.length !== 2) throw new ModelError('ShapeMismatch', `\`${site.shift.through}\` is missing or not a matrix`);
    const cols = w.shape[1];
    for (let o = 0; o < data.length; o++) {
      let sum = 0;
      for (let j = 0; j < t.length; j++) sum += w.data[site.shift.axis === 1 ? o * cols + j : j * cols + o] * t[j];
      data[o] += sum;
    }
  }
  out.set(site.shift.bias, { shape: b.shape, data });
}

/**
 * The correction at `site` that gives units measured as `measured` the endpoints' statistics
 * interpolated at `lambda`: REPAIR's arithmetic, shared by every transformer family (the ViT's
 * too, compute/vitRepair.ts).
 */
export function correctionAt(site: number, measured: { mean: Float64Array; std: Float64Array }, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, canShift: boolean): LmRepairCorrection {
  const { mean, std } = measured;
  const scale = new Float64Array(mean.length);
  const shift = new Float64Array(mean.length);
  for (let j = 0; j < mean.length; j++) {
    const tm = (1 - lambda) * statsA[site].mean[j] + lambda * statsB[site].mean[j];
    const ts = (1 - lambda) * statsA[site].std[j] + lambda * statsB[site].std[j];
    scale[j] = std[j] > 1e-8 ? ts / std[j] : 1;
    shift[j] = tm - mean[j] * scale[j];
  }
  return canShift ? { scale, shift } : { scale };
}

/**
 * The REPAIR hook of one pass whose first batch starts with the `sampleRows` token rows of the
 * sample: at each site's first call it measures those rows, records the correction and applies
 * it to the whole batch (later sites are then measured on the model repaired so far); later
 * batches get the recorded correction.
 */
function repairHook(sites: readonly LmRepairSite[], theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, sampleRows: number): { hooks: LmFeatureHooks; corrections: LmRepairCorrection[] } {
  const canShift = sites.map((s) => s.shift !== undefined && theta.has(s.shift.bias));
  const corrections: LmRepairCorrection[] = [];
  const repair = (site: number, u: tf.Tensor2D): tf.Tensor2D => {
    if (!corrections[site]) {
      const sample = u.shape[0] === sampleRows ? u : tf.slice(u, [0, 0], [sampleRows, -1]);
      corrections[site] = correctionAt(site, finish(accumulate(undefined, sample), sampleRows), lambda, statsA, statsB, canShift[site]);
    }
    return correctUnits(u, corrections[site]);
  };
  return { hooks: { repair }, corrections };
}

/**
 * The interpolated `theta` at `lambda` with every REPAIR site's units set to the endpoints'
 * interpolated statistics (`statsA`, `statsB` from lmUnitStats on the same `sequences`).
 */
export async function repairLmInterpolated(theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, config: LmConfig, input: LmEvaluationInput, sequences = Math.min(input.n, REPAIR_SEQUENCES)): Promise<Map<string, DenseTensor>> {
  return (await repairLm(theta, lambda, statsA, statsB, config, input, sequences)).tensors;
}

/** The units of a site corrected in the pass, u' = s u + t (what fold puts into the weights). */
export function correctUnits(u: tf.Tensor2D, c: LmRepairCorrection): tf.Tensor2D {
  const scaled = tf.mul(u, tf.tensor1d(Float32Array.from(c.scale)));
  return (c.shift ? tf.add(scaled, tf.tensor1d(Float32Array.from(c.shift))) : scaled) as tf.Tensor2D;
}

/** repairLmInterpolated, with each site's correction (in site order) as well as the weights it is folded into. */
export async function repairLm(theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, config: LmConfig, input: LmEvaluationInput, sequences = Math.min(input.n, REPAIR_SEQUENCES)): Promise<{ tensors: Map<string, DenseTensor>; corrections: readonly LmRepairCorrection[] }> {
  const sites = lmRepairSites(theta, config);
  const { hooks, corrections } = repairHook(sites, theta, lambda, statsA, statsB, sequences * input.t);
  const model = buildLm(theta, config);
  try {
    tf.tidy(() => {
      model.hidden(batchIds(input, 0, sequences), hooks).dispose();
    });
  } finally {
    model.dispose();
  }
  const out = new Map(theta);
  sites.forEach((site, i) => fold(out, site, corrections[i]));
  return { tensors: out, corrections };
}

/**
 * The metrics of `theta` at `lambda` repaired, in one pass over the data: the evaluation's first
 * batch holds the REPAIR sample (its first `sequences` sequences), on which each site is measured
 * and corrected in the pass, and later batches get the same corrections; the loss is that of
 * the model repairLmInterpolated folds, up to float32 rounding (the correction is applied to the
 * units instead of to the weights). When the sample does not open the first batch (a budget
 * under `sequences` per batch, or a first batch without scored positions), it is two passes:
 * repairLmInterpolated, then the evaluation.
 */
export async function evaluateRepairedLm(theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, config: LmConfig, input: LmEvaluationInput, sequences: number, opts: LmEvaluateOptions = {}): Promise<LmMetrics> {
  const plan = planLmBatches(config, input.t, opts.budgetBytes);
  const firstBatch = Math.min(input.n, plan.sequences);
  if (firstBatch < sequences || lowerBound(input.rows, firstBatch * input.t, 0) === 0) {
    return evaluateLmWeights(await repairLmInterpolated(theta, lambda, statsA, statsB, config, input, sequences), config, input, opts);
  }
  const { hooks } = repairHook(lmRepairSites(theta, config), theta, lambda, statsA, statsB, sequences * input.t);
  const model = buildLm(theta, config);
  try {
    return await evaluateLm(model, input, { ...opts, features: hooks });
  } finally {
    model.dispose();
  }
}
