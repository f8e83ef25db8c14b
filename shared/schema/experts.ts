/**
 * A mixture-of-experts layer of a permutation spec as the inspector shows it (experts × units per
 * expert, the router's top-k, which permutations move them); built by src/core/permspec/expertLayers.ts.
 */
import * as v from 'valibot';
import { int, obj, str } from './rules';

export const expertLayerSchema = obj({
  /** The layer as the permutations name it ("model.layers.0"). */
  layer: str(),
  /** "layer 0" (the last number in the name), else the name. */
  label: str(),
  experts: int(1),
  unitsPerExpert: int(1),
  /** Experts the router picks per token (config.json), when known. */
  topK: v.optional(int(1)),
  /** The permutation of the experts' order. */
  outer: str(),
  /** The permutation of the units inside each expert. */
  units: str(),
  /** One line describing the layer. */
  summary: str(),
});

/** A spec's expert layers (absent: the spec has none). */
export const expertLayersSchema = v.optional(v.pipe(v.array(expertLayerSchema, 'must be an array'), v.readonly()));

export type ExpertLayer = v.InferOutput<typeof expertLayerSchema>;
