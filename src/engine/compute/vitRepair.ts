/**
 * REPAIR (Jordan et al. 2022, arXiv 2211.08403) for Vision Transformers (Hugging Face
 * `ViTForImageClassification`), as GPT-2 has it (lm/repair.ts, whose arithmetic this reuses):
 * the sites are each block's MLP intermediate units, after `intermediate.dense` and before the
 * GELU; in the interpolated model (1 - lambda) A + lambda pi(B) their per-unit mean and standard
 * deviation over every token of the sample images are set to (1 - lambda) mu_A + lambda mu_B and
 * (1 - lambda) sigma_A + lambda sigma_B. The correction u' = s u + t is exact in the weights:
 * `intermediate.dense`'s row j and bias j times s_j, plus t_j in the bias.
 *
 * One pass over the sample: at each site the units are measured, corrected in the pass (later
 * sites are measured on the model repaired so far, the paper's reset layer by layer) and the
 * correction recorded, then folded into the weights. The sample is the first VIT_REPAIR_EXAMPLES
 * images of the training split, as an MLP's REPAIR takes its examples (barrier --repair and merge
 * --repair measure the same ones); it runs as one batch, which bounds it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import type { ModelConfig } from '../../core/families/modelConfig';
import { ModelError } from '../../core/families/modelErrors';
import { vitPrefix } from '../../core/families/vit';
import { buildModel } from '../families/build';
import type { LmRepairSite } from '../lm/architecture';
import { accumulate, correctionAt, correctUnits, finish, fold, type LmRepairCorrection, type LmUnitStats } from '../lm/repair';

/** Images REPAIR measures a ViT on: at most this many of the first of the training split. */
export const VIT_REPAIR_EXAMPLES = 32;

/** Images per forward pass of the endpoints' statistics. */
const STATS_BATCH = 8;

/** The checkpoint is a Vision Transformer (its tensor names), whose REPAIR is this module's. */
export function isVit(t: TensorMap): boolean {
  return vitPrefix([...t].map(([name, x]) => ({ name, shape: x.shape }))) !== null;
}

/** Each block's REPAIR site: `intermediate.dense`'s rows and bias scaled, the shift in its bias. */
export function vitRepairSites(t: TensorMap): readonly LmRepairSite[] {
  const prefix = vitPrefix([...t].map(([name, x]) => ({ name, shape: x.shape })));
  if (prefix === null) throw new ModelError('Unsupported', 'REPAIR: not a Vision Transformer checkpoint');
  const sites: LmRepairSite[] = [];
  for (let l = 0; t.has(`${prefix}encoder.layer.${l}.intermediate.dense.weight`); l++) {
    const dense = `${prefix}encoder.layer.${l}.intermediate.dense`;
    sites.push({ scale: [[`${dense}.weight`, 0], [`${dense}.bias`, 0]], ...(t.has(`${dense}.bias`) ? { shift: { bias: `${dense}.bias` } } : {}) });
  }
  if (sites.length === 0) throw new ModelError('Unsupported', 'REPAIR: the Vision Transformer has no `intermediate.dense` layer');
  return sites;
}

/** Per site, the units' mean and standard deviation of the ViT `t` over every token of the images `x` [n, ...]. */
export function vitUnitStats(t: TensorMap, config: ModelConfig, x: tf.Tensor): LmUnitStats {
  const sites = vitRepairSites(t);
  const acc: ({ sum: Float64Array; sq: Float64Array } | undefined)[] = sites.map(() => undefined);
  let rows = 0;
  const model = buildModel(t, config);
  try {
    const n = x.shape[0];
    for (let i0 = 0; i0 < n; i0 += STATS_BATCH) {
      const size = Math.min(STATS_BATCH, n - i0);
      tf.tidy(() => {
        const batch = tf.slice(x, i0, size);
        model.forward(batch, {
          repair: (site, u) => {
            acc[site] = accumulate(acc[site], u);
            if (site === 0) rows += u.shape[0];
            return u;
          },
        });
      });
    }
  } finally {
    model.dispose();
  }
  return acc.map((a, i) => {
    if (!a) throw new ModelError('Unsupported', `REPAIR site ${i} of the Vision Transformer was not reached by the forward pass`);
    return finish(a, rows);
  });
}

/**
 * The interpolated ViT `theta` at `lambda` with every site's units set to the endpoints'
 * interpolated statistics (`statsA`, `statsB` from vitUnitStats on the same images `x`), folded
 * into the weights; and each site's correction, in site order.
 */
export function repairVit(theta: TensorMap, lambda: number, statsA: LmUnitStats, statsB: LmUnitStats, config: ModelConfig, x: tf.Tensor): { tensors: Map<string, DenseTensor>; corrections: readonly LmRepairCorrection[] } {
  const sites = vitRepairSites(theta);
  const corrections: LmRepairCorrection[] = [];
  const model = buildModel(theta, config);
  try {
    model.forward(x, {
      repair: (site, u) => {
        corrections[site] = correctionAt(site, finish(accumulate(undefined, u), u.shape[0]), lambda, statsA, statsB, sites[site].shift !== undefined);
        return correctUnits(u, corrections[site]);
      },
    }).dispose();
  } finally {
    model.dispose();
  }
  const out = new Map(theta);
  sites.forEach((site, i) => fold(out, site, corrections[i]));
  return { tensors: out, corrections };
}

/** The ViT `theta` (unrepaired) with `corrections` applied to its sites' units in the pass: the function REPAIR defines. */
export function correctedVitForward(theta: TensorMap, corrections: readonly LmRepairCorrection[], config: ModelConfig): { forward: (x: tf.Tensor) => tf.Tensor2D; dispose(): void } {
  const model = buildModel(theta, config);
  return { forward: (x) => model.forward(x, { repair: (site, u) => correctUnits(u, corrections[site]) }), dispose: () => model.dispose() };
}
