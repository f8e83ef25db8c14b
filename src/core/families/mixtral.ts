/**
 * Mixtral (MixtralForCausalLM): Llama's attention, norms and rotary positions (its naming and
 * keys are Llama's, imported from llama.ts), with a sparse mixture of experts in place of each
 * block's MLP: `layers.L.block_sparse_moe.gate.weight` (the router) and
 * `layers.L.block_sparse_moe.experts.E.w1|w2|w3.weight`, placed by permspec/inferExperts.ts on their
 * stacked view (core/moe/expertStack.ts).
 */
import { expertAxes, expertNote } from '../permspec/inferExperts';
import type { TransformerNaming } from '../permspec/inferTransformer';
import { HF_SIZE_KEYS, type CoreLm } from './lm';
import { LLAMA_NAMING, llamaAttentionKeys } from './llama';
import { ModelError } from './modelErrors';
import { transformerFamily } from './transformer';

/** Llama's rules, detected by the router (a Llama naming with experts); the experts placed before the rules. */
const naming: TransformerNaming = {
  ...LLAMA_NAMING,
  id: 'mixtral',
  detect: /^(.*?)layers\.\d+\.block_sparse_moe\.gate\.weight$/,
  ownAxes: expertAxes,
  mlpNote: expertNote,
};

/**
 * MixtralConfig's keys and class defaults: rotary base 1e6 (LlamaConfig's is 1e4), eps 1e-5,
 * `num_local_experts` / `num_experts_per_tok` as LmConfig.experts. Written by transformers 5 it
 * carries `rope_parameters` and `head_dim: null`; older hub configs a top-level `rope_theta`:
 * both are read (llamaAttentionKeys).
 */
const lm: Omit<CoreLm, 'prefix'> = {
  modelTypes: {
    mixtral: {
      className: 'MixtralConfig',
      defaults: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 131072, intermediate_size: 14336, num_local_experts: 8, num_experts_per_tok: 2 },
    },
  },
  objective: 'causal',
  keys: { ...HF_SIZE_KEYS, eps: 'rms_norm_eps' },
  defaults: { eps: 1e-5, act: 'silu', tied: false },
  groupedQuery: true,
  extra(r, common) {
    const experts = { count: r.int(['num_local_experts'], 'the experts per layer'), topK: r.int(['num_experts_per_tok'], 'the experts each token is routed to') };
    if (experts.topK > experts.count) r.fail(`"num_experts_per_tok" ${experts.topK} exceeds "num_local_experts" ${experts.count}`);
    return { ...llamaAttentionKeys(r, common, 1e6), experts };
  },
  fromShapes() {
    // The router's rows give the experts, but nothing in the weights says how many each token uses.
    throw new ModelError('Unsupported', 'transformer: Mixtral weights without config.json: the experts per token ("num_experts_per_tok") are not in the weights; put the model\'s config.json beside them');
  },
};

export const mixtral = transformerFamily(naming, 'Transformer (Mixtral naming, mixture of experts)', lm);
