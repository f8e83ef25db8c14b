/**
 * Mixtral's figures for the LM memory plan (memoryPlan.ts): its parameters as Hugging Face lays
 * them out, and the MLP's share of a token's activations in our forward pass (mixtral.ts runs
 * every expert on every token, one expert at a time).
 */
import type { LmConfig } from './config';

/** Embeddings, per block the Llama attention, the router and E experts (w1, w2, w3), the norms; the untied head. */
export function mixtralParameterCount(config: LmConfig): number {
  const { hidden: d, vocab: v, heads: h, kvHeads: kv, headDim: hd, layers: l } = config;
  const f = config.intermediate ?? 4 * d;
  const e = config.experts?.count ?? 1;
  const block = 2 * d + d * h * hd + 2 * d * kv * hd + h * hd * d + e * d + e * 3 * d * f;
  return v * d + l * block + d + (config.tied ? 0 : v * d);
}

/**
 * float32 values per token held by one block's MLP: one expert's w1, w3, activation and product
 * (as Llama's gated MLP) plus the routing weights and the running sum.
 */
export function mixtralMlpValuesPerToken(config: LmConfig): number {
  const f = config.intermediate ?? 4 * config.hidden;
  return 5 * f + 4 * (config.experts?.count ?? 1) + 2 * config.hidden;
}
