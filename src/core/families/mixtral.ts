/**
 * Mixtral (MixtralForCausalLM): Llama's attention, norms and rotary positions (its naming and
 * keys are Llama's, imported from llama.ts), with a sparse mixture of experts in place of each
 * block's MLP: `layers.L.block_sparse_moe.gate.weight` (the router) and
 * `layers.L.block_sparse_moe.experts.E.w1|w2|w3.weight`, placed by permspec/inferExperts.ts on their
 * stacked view (core/moe/expertStack.ts).
 */
import type { TensorMap } from '../checkpoint';
import { stackedName } from '../moe/expertStack';
import { expertAxes, expertNote } from '../permspec/inferExperts';
import type { TransformerNaming } from '../permspec/inferTransformer';
import { SymmetryUnsupported } from '../symmetry/errors';
import type { LinearLayer, TransformerLayout } from '../symmetry/transformerLayout';
import { HF_SIZE_KEYS, type CoreLm, type LmConfig } from './lm';
import { LLAMA_NAMING, llamaAttentionKeys, llamaOrthogonalLayout } from './llama';
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
 * Where Mixtral's stream, heads and experts sit for the orthogonal symmetry: Llama's layout
 * (RMSNorm, rotary heads, grouped-query attention) with each block's MLP the experts' stacked
 * view (core/moe/expertStack.ts, as the LM weights are read): w1 and w3 [E x I, d] and the
 * router [E, d] read the MLP norm, w2 [d, E x I] writes the stream.
 */
function mixtralOrthogonalLayout(tensors: TensorMap, config: LmConfig): TransformerLayout {
  const count = config.experts?.count ?? 0;
  const base = llamaOrthogonalLayout(tensors, config);
  const p = tensors.has('model.embed_tokens.weight') ? 'model.' : '';
  const lin = (weight: string): LinearLayer => ({ weight, storage: 'outIn' });
  const blocks = base.blocks.map((b, i) => {
    const moe = `${p}layers.${i}.block_sparse_moe`;
    const [w1, w2, w3] = (['w1', 'w2', 'w3'] as const).map((w) => lin(stackedName(`${moe}.experts`, w)));
    if (!tensors.has(w1.weight)) throw new SymmetryUnsupported(`${config.file}: the experts of layer ${i} are not stacked (\`${w1.weight}\`): read the weights with readLmWeights`);
    const router = lin(`${moe}.gate.weight`);
    return {
      ...b,
      mlpNorm: { ...b.mlpNorm, readers: [router, w1, w3] },
      mlpIn: [w1, w3],
      mlpOut: w2,
      mlpWidth: tensors.get(w1.weight)!.shape[0],
      experts: { router, count },
    };
  });
  return { ...base, arch: 'mixtral', blocks };
}

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
  orthogonalLayout: mixtralOrthogonalLayout,
};

export const mixtral = transformerFamily(naming, 'Transformer (Mixtral naming, mixture of experts)', lm);
