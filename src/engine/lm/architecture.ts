/**
 * What one language-model architecture gives the generic LM code (its family's engine module
 * carries it as `EngineFamily.lm`, src/engine/families/): the forward pass, the tensors whose
 * axes name each feature of activation matching, the parameter count the memory plan uses, and
 * REPAIR's sites. Generic code (model.ts, featureAxes.ts,
 * memoryPlan.ts, repair.ts) asks the family; no family name is switched on outside it.
 */
import type { BlockPart, PermSpec, TensorMap } from '../../core/checkpoint';
import type { LmConfig } from './config';
import type { LmModel } from './layers';

/** [tensor, axis, part of a concatenated block axis]. */
export type FeatureSource = readonly [string, number, number?];

/** Tensor axes that carry each feature's permutation in block `i` (featureAxes.ts reads them from the spec). */
export interface LmFeatureSources {
  /** The residual stream (read from block 0's call). */
  readonly residual: FeatureSource;
  /** The MLP's hidden units: the down projection's input axis. */
  readonly mlp: FeatureSource;
  /** The heads' outputs: the output projection's input axis. */
  readonly out: FeatureSource;
  readonly q: FeatureSource;
  readonly k: FeatureSource;
  readonly v: FeatureSource;
}

/** Biases some configs add that config.json states in keys LmConfig does not keep. */
export interface LmBiasFlags {
  readonly attentionBias?: boolean;
  readonly mlpBias?: boolean;
}

/**
 * One set of units REPAIR renormalises (repair.ts): u' = s u + t per unit, folded into weights.
 * `scale`: [tensor, axis, offset] entries whose index offset + j along axis is multiplied by s_j
 * (the producing layer's weight and bias; a tensor the checkpoint lacks is skipped), which makes
 * the units s u. `shift`: where t goes, into the producer's bias after scaling (`bias`), or
 * through the consumer's weight (units on `axis`) into the consumer's bias (b + W t). When that
 * bias is not in the checkpoint the units are only rescaled (their std matched, not their mean).
 */
export interface LmRepairSite {
  readonly scale: readonly (readonly [string, number, number?])[];
  readonly shift?: { readonly bias: string; readonly through?: undefined } | { readonly bias: string; readonly through: string; readonly axis: number };
}

export interface LmArchitecture {
  /** The forward pass; `weights` names the weights in messages. */
  build(tensors: TensorMap, config: LmConfig, weights: string): LmModel;
  /** Block `i`'s feature tensors under the naming's `prefix` (`transformer.`, `model.`, `bert.`). */
  featureSources(prefix: string, i: number): LmFeatureSources;
  /** Parameters of the model `config` describes, as Hugging Face lays them out (before any weight is read). */
  parameterCount(config: LmConfig, raw: LmBiasFlags): number;
  /**
   * REPAIR's sites in forward order (the `repair` hook's `site` numbers them, layers.ts
   * LmFeatureHooks): the units each renormalises and where the affine correction is folded.
   * Absent: REPAIR is not implemented for the family.
   */
  repairSites?(prefix: string, config: LmConfig, tensors: TensorMap): readonly LmRepairSite[];
  /**
   * float32 values per token one block's MLP holds in the forward pass, when not the gated or
   * plain MLP's 5 x its width (the memory plan, memoryPlan.ts): Mixtral's experts.
   */
  mlpValuesPerToken?(config: LmConfig): number;
  /**
   * Mixture of experts: per block, the spec's block axis [experts, units] that the `experts`
   * feature hook (layers.ts LmFeatureHooks) samples; absent for families without experts.
   */
  expertFeatureAxes?(spec: PermSpec, config: LmConfig, prefix: string): (BlockPart | undefined)[];
}
