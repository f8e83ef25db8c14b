/**
 * An attention layer of a permutation spec as the engine reports it with an alignment and the
 * inspector shows it (heads × head_dim, KV groups, which dimensions permute). Arrays are
 * read-only in the type, like the spec-side description they are built from.
 */
import * as v from 'valibot';
import { bool, int, obj, str } from './rules';

/** One permutation of the dimensions inside each head (or KV group): one per block. */
export const innerPermutationSchema = obj({
  perm: str(),
  /** "q/k", "v/o", or the permutation's name. */
  label: str(),
});

export const attentionLayerSchema = obj({
  /** The layer as the permutations name it ("transformer.h.3"). */
  layer: str(),
  /** "layer 3" (the last number in the name), else the name. */
  label: str(),
  /** Query heads. */
  heads: int(1),
  /** Grouped-query attention: the number of KV groups (each holds heads / kvGroups query heads). */
  kvGroups: v.optional(int(1)),
  headDim: int(1),
  /** The permutation of the blocks: the heads, or the KV groups with grouped-query attention. */
  outer: str(),
  /** Grouped-query attention: the permutation of the query heads inside each KV group. */
  groupHeads: v.optional(str()),
  /** Permutations of the dimensions inside each block (q/k, v/o). */
  inner: v.pipe(v.array(innerPermutationSchema, 'must be an array'), v.readonly()),
  /** Some projections' head dimensions never move (rotary q/k). */
  fixedDims: bool(),
  /** "4 heads × 16 dims", "4 KV groups × 2 query heads × 16 dims". */
  shape: str(),
  /** What permutes inside the layer, clause by clause. */
  details: v.pipe(v.array(str(), 'must be an array of strings'), v.readonly()),
  /** One line describing the layer. */
  summary: str(),
});

/** A spec's attention layers (absent: the spec has none, or the sender predates them). */
export const attentionLayersSchema = v.optional(v.pipe(v.array(attentionLayerSchema, 'must be an array'), v.readonly()));

export type InnerPermutation = v.InferOutput<typeof innerPermutationSchema>;
export type AttentionLayer = v.InferOutput<typeof attentionLayerSchema>;
