/**
 * Batches of an LM evaluation, planned before anything is allocated. The forward pass runs one
 * block at a time under its own tidy (layers.ts), so the peak is one block's intermediates for
 * the batch plus the logits of one chunk of scored rows:
 * - per sequence of T tokens, float32: attention scores and their softmax copies,
 *   about 5 x heads x T x T, plus per token about 12 x hidden (residual, norms, outputs),
 *   10 x heads x head_dim (q, k, v, rotary and transposed copies, grouped-query gathers) and
 *   5 x the MLP width (gate, up, activation, product);
 * - per scored row: logits, log-softmax and the arg-max pass, about 3 x vocab.
 * The weights are not in this budget (the caller holds them either way).
 */
import { ModelError } from '../../core/families/modelErrors';
import { DEFAULT_LM_ACTIVATION_BUDGET, OVER_BUDGET } from '../../core/memoryBudget';
import { formatBytes } from '../../../shared/bytes';
import { lmArchitecture } from '../families/registry';
import type { LmBiasFlags } from './architecture';
import type { LmConfig } from './config';

/** Activation budget of one evaluation when the caller gives none (core/memoryBudget.ts). */
export const DEFAULT_LM_BUDGET_BYTES = DEFAULT_LM_ACTIVATION_BUDGET;

export interface LmBatchPlan {
  /** Sequences per forward pass. */
  readonly sequences: number;
  /** Scored rows per output-head chunk. */
  readonly headRows: number;
  readonly bytesPerSequence: number;
  readonly bytesPerHeadRow: number;
  readonly budgetBytes: number;
}

export function lmBytesPerSequence(config: LmConfig, t: number): number {
  const mlp = config.intermediate ?? 4 * config.hidden;
  const perToken = 12 * config.hidden + 10 * config.heads * config.headDim + (lmArchitecture(config.family).mlpValuesPerToken?.(config) ?? 5 * mlp);
  return 4 * (5 * config.heads * t * t + t * perToken);
}

/** Sequences per batch and head rows per chunk for sequences of `t` tokens under `budgetBytes`. */
export function planLmBatches(config: LmConfig, t: number, budgetBytes = DEFAULT_LM_BUDGET_BYTES): LmBatchPlan {
  const bytesPerSequence = lmBytesPerSequence(config, t);
  const bytesPerHeadRow = 4 * 3 * config.vocab;
  // Half the budget for the blocks, half for the output head: the two never overlap in time
  // except for the hidden rows, which the block half covers.
  const half = budgetBytes / 2;
  if (bytesPerSequence > half || bytesPerHeadRow > half) {
    const what = bytesPerSequence > half ? `one sequence of ${t} tokens needs ${formatBytes(bytesPerSequence)} of activations (attention is ${t} x ${t} per head)` : `one row of logits needs ${formatBytes(bytesPerHeadRow)}`;
    throw new ModelError(OVER_BUDGET, `${config.file}: ${what}, over half the ${formatBytes(budgetBytes)} memory budget: use shorter sequences or a larger budget`, config.file);
  }
  return {
    sequences: Math.max(1, Math.floor(half / bytesPerSequence)),
    headRows: Math.max(1, Math.floor(half / bytesPerHeadRow)),
    bytesPerSequence,
    bytesPerHeadRow,
    budgetBytes,
  };
}

/**
 * Parameters of the model `config` describes, as Hugging Face lays them out: embeddings (and
 * learned positions), per block the attention projections, the MLP and the norms, the final
 * norm, the untied output head; biases where the family has them (GPT-2 and BERT everywhere,
 * Qwen2 on q/k/v, Llama when `attention_bias` / `mlp_bias`), BERT's token types and masked-LM
 * head. Computable before any weight is read, so a job can plan its models' memory.
 */
export function lmParameterCount(config: LmConfig, raw: LmBiasFlags = {}): number {
  return lmArchitecture(config.family).parameterCount(config, raw);
}

/** Bytes a built model holds: its weights as float32 in memory plus their tfjs copies. */
export function lmModelBytes(config: LmConfig, raw?: Parameters<typeof lmParameterCount>[1]): number {
  return 2 * 4 * lmParameterCount(config, raw);
}
