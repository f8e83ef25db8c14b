/** GPT-2 (Hugging Face naming: `h.N.attn.c_attn`, Conv1D weights stored [in, out]). */
import type { CoreLm, LmConfig } from './lm';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { namingPrefix, transformerFamily } from './transformer';
import type { TensorMap } from '../checkpoint';

/** Sizes from the shapes; tanh GELU and eps 1e-5 unless the model config says otherwise; every released size has head_dim 64. */
function gpt2FromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const p = namingPrefix(tensors, 'gpt2');
  const [vocab, hidden] = shapeOf(tensors, `${p}wte.weight`, 2);
  const layers = countBlocks(tensors, `${p}h.`);
  const hc = resolveHeads('gpt2', [64], shapeOf(tensors, `${p}h.0.attn.c_attn.weight`, 2)[1] / 3, opts);
  return {
    ...FROM_SHAPES, modelType: 'gpt2', family: 'gpt2', objective: 'causal', layers, hidden, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${p}h.0.mlp.c_fc.weight`, 2)[1], vocab, maxPositions: shapeOf(tensors, `${p}wpe.weight`, 2)[0],
    eps: opts.eps ?? 1e-5, act: opts.gelu === 'exact' ? 'gelu' : 'gelu_tanh', tied: !tensors.has('lm_head.weight'),
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

/** GPT2Config's keys (`n_layer`, `n_embd`, ...; the generic names as aliases), defaults and score-scaling options. */
const lm: CoreLm = {
  modelTypes: { gpt2: { className: 'GPT2Config', defaults: { n_layer: 12, n_embd: 768, n_head: 12, vocab_size: 50257, n_positions: 1024 } } },
  objective: 'causal',
  keys: {
    layers: ['n_layer', 'num_hidden_layers'],
    hidden: ['n_embd', 'hidden_size'],
    heads: ['n_head', 'num_attention_heads'],
    positions: ['n_positions', 'max_position_embeddings'],
    intermediate: 'n_inner',
    eps: 'layer_norm_epsilon',
    act: 'activation_function',
  },
  defaults: { eps: 1e-5, act: 'gelu_new', tied: true, intermediate: (hidden) => 4 * hidden },
  groupedQuery: false,
  extra: (r) => ({ scaleAttnWeights: r.bool('scale_attn_weights', true), scaleAttnByLayer: r.bool('scale_attn_by_inverse_layer_idx', false) }),
  fromShapes: gpt2FromShapes,
};

export const gpt2 = transformerFamily('gpt2', 'Transformer (GPT-2 naming)', ['gpt2'], lm);
