/**
 * REPAIR (Jordan et al. 2022, arXiv 2211.08403) for an LM's MLP hidden units (GPT-2 so far: its
 * family's `repairUnits`): in the
 * interpolated model, each block's MLP pre-activation mean and standard deviation (over every
 * token of the data) are rescaled to the interpolation of A's and pi(B)'s, folded into `c_fc`
 * (Conv1D, weight [in, out]: column j and bias j belong to hidden unit j). Blocks are repaired in
 * order, each measured after the ones before it are repaired. The residual stream is not
 * repaired (its statistics are set by LayerNorm before each read).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';
import type { LmConfig } from './config';
import type { LmEvaluationInput } from './evaluate';
import { lmArchitecture } from '../families/registry';
import type { LmArchitecture } from './architecture';
import { namePrefix } from './layers';
import { buildLm } from './model';

/** Per block: MLP pre-activation mean and standard deviation per hidden unit. */
export type LmUnitStats = readonly { readonly mean: Float64Array; readonly std: Float64Array }[];

/** Tokens used for the statistics: at most this many sequences of the data. */
export const REPAIR_SEQUENCES = 64;

/** The family's hidden-unit weights for REPAIR; one line when it has none. */
function repairUnitsOf(config: LmConfig): NonNullable<LmArchitecture['repairUnits']> {
  const units = lmArchitecture(config.family).repairUnits;
  if (!units) throw new ModelError('Unsupported', `REPAIR for language models is implemented for GPT-2, not yet for ${config.modelType}`);
  return units;
}

/** MLP pre-activation statistics of blocks `only` (all when absent) of the model `t`. */
export async function lmUnitStats(t: TensorMap, config: LmConfig, input: LmEvaluationInput, only?: number): Promise<LmUnitStats> {
  repairUnitsOf(config);
  const L = config.layers;
  const units = config.intermediate ?? 4 * config.hidden;
  const sum = Array.from({ length: L }, () => new Float64Array(units));
  const sq = Array.from({ length: L }, () => new Float64Array(units));
  let count = 0;
  const n = Math.min(input.n, REPAIR_SEQUENCES);
  const model = buildLm(t, config);
  try {
    for (let s0 = 0; s0 < n; s0 += 8) {
      const s1 = Math.min(n, s0 + 8);
      tf.tidy(() => {
        const ids = tf.tensor2d(input.input.subarray(s0 * input.t, s1 * input.t), [s1 - s0, input.t], 'int32');
        model.hidden(ids, {
          mlpPre: (layer, pre) => {
            if (only !== undefined && layer !== only) return;
            const a = tf.sum(pre, 0).dataSync();
            const b = tf.sum(tf.square(pre), 0).dataSync();
            for (let j = 0; j < units; j++) {
              sum[layer][j] += a[j];
              sq[layer][j] += b[j];
            }
          },
        }).dispose();
      });
      count += (s1 - s0) * input.t;
    }
  } finally {
    model.dispose();
  }
  return sum.map((s, l) => {
    const mean = Float64Array.from(s, (v) => v / count);
    return { mean, std: Float64Array.from(sq[l], (v, j) => Math.sqrt(Math.max(0, v / count - mean[j] * mean[j]))) };
  });
}

/** The interpolated GPT-2 `theta` at `lambda` with its MLP units' statistics set to the endpoints' interpolation. */
export async function repairLmInterpolated(theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, config: LmConfig, input: LmEvaluationInput): Promise<Map<string, DenseTensor>> {
  const unitsOf = repairUnitsOf(config);
  const p = namePrefix(theta, config, config.file);
  const out = new Map(theta);
  for (let l = 0; l < config.layers; l++) {
    const { mean, std } = (await lmUnitStats(out, config, input, l))[l];
    const { weight: wName, bias: bName } = unitsOf(p, l);
    const w = out.get(wName);
    if (!w) throw new ModelError('ShapeMismatch', `\`${wName}\` is missing`);
    const [inp, units] = w.shape;
    const scale = new Float64Array(units);
    const shift = new Float64Array(units);
    for (let j = 0; j < units; j++) {
      const tm = (1 - lambda) * statsA[l].mean[j] + lambda * statsB[l].mean[j];
      const ts = (1 - lambda) * statsA[l].std[j] + lambda * statsB[l].std[j];
      scale[j] = std[j] > 1e-8 ? ts / std[j] : 1;
      shift[j] = tm - mean[j] * scale[j];
    }
    const wNew = Float32Array.from(w.data, (v, k) => v * scale[k % units]);
    const b = out.get(bName);
    out.set(wName, { shape: [inp, units], data: wNew });
    out.set(bName, { shape: [units], data: Float32Array.from(scale, (s, j) => (b ? b.data[j] * s : 0) + shift[j]) });
  }
  return out;
}
