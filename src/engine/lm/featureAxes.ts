/**
 * Which spec permutations an LM's features (layers.ts `LmFeatureHooks`) sample, read from the
 * spec entries of the tensors those features feed: the residual stream from the token
 * embedding's width axis, each MLP's hidden units from its down projection's input axis, and
 * each block's attention from the block axes (heads x head_dim, or KV groups x query heads x
 * head_dim) of the output projection's input and of the q, k, v projections' outputs.
 */
import type { BlockPart, PermSpec } from '../../core/checkpoint';
import { isBlockAxis } from '../../core/blockAxis';
import { lmArchitecture } from '../families/registry';
import type { FeatureSource as Src } from './architecture';
import type { LmConfig } from './config';

/** One block's attention features as block axes of the spec (undefined: not permuted as heads). */
export interface LmHeadAxes {
  /** The heads' outputs, laid out like the output projection's input. */
  readonly out?: BlockPart;
  readonly q?: BlockPart;
  readonly k?: BlockPart;
  readonly v?: BlockPart;
}

/** Which spec permutation each LM feature belongs to (undefined: that feature is not permuted). */
export interface LmFeatureAxes {
  /** The residual stream's permutation: fed by the embeddings' and every block's output. */
  readonly residual?: string;
  /** Per block, its MLP hidden units' permutation. */
  readonly mlp: readonly (string | undefined)[];
  /** Per block, its attention's block axes (absent: heads are not matched). */
  readonly heads?: readonly (LmHeadAxes | undefined)[];
  /** Mixture of experts: per block, the experts' hidden units as a block axis [experts, units] (the family's expertFeatureAxes). */
  readonly experts?: readonly (BlockPart | undefined)[];
}

function plainPerm(spec: PermSpec, [tensor, axis]: Src): string | undefined {
  const entry = spec.axes[tensor]?.[axis];
  return typeof entry === 'string' ? entry : undefined;
}

function blockPart(spec: PermSpec, [tensor, axis, part]: Src): BlockPart | undefined {
  const entry = spec.axes[tensor]?.[axis];
  if (!isBlockAxis(entry)) return undefined;
  if (part === undefined) return entry.parts.length === 1 ? entry.parts[0] : undefined;
  return entry.parts[part];
}

export function lmFeatureAxes(spec: PermSpec, config: LmConfig, prefix: string): LmFeatureAxes {
  const lm = lmArchitecture(config.family);
  const sources = lm.featureSources.bind(lm);
  const layers = Array.from({ length: config.layers }, (_, i) => sources(prefix, i));
  return {
    residual: plainPerm(spec, sources(prefix, 0).residual),
    mlp: layers.map((s) => plainPerm(spec, s.mlp)),
    heads: layers.map((s) => {
      const h: LmHeadAxes = { out: blockPart(spec, s.out), q: blockPart(spec, s.q), k: blockPart(spec, s.k), v: blockPart(spec, s.v) };
      return h.out || h.q || h.k || h.v ? h : undefined;
    }),
    ...(lm.expertFeatureAxes ? { experts: lm.expertFeatureAxes(spec, config, prefix) } : {}),
  };
}
