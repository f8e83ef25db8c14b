/** GPT-2 (Hugging Face naming: `h.N.attn.c_attn`, Conv1D weights stored [in, out]). */
import type { CoreLm, LmConfig } from './lm';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { namingPrefixOf, transformerFamily } from './transformer';
import type { TensorMap } from '../checkpoint';
import type { BlockLayout, LinearLayer, TransformerLayout } from '../symmetry/transformerLayout';
import { LM_HEAD_RULES, N, type Rule, type TransformerNaming } from '../permspec/inferTransformer';

// Each regex matches a name relative to the model prefix; group 1 is the block number when present.
const GPT2_RULES: readonly Rule[] = [
  { re: /^wte\.weight$/, roles: [null, 'R'] },
  { re: /^wpe\.weight$/, roles: [null, 'R'] },
  { re: new RegExp(`^h\\.${N}\\.ln_[12]\\.(weight|bias)$`), roles: ['R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.weight$`), roles: ['R', 'QKV'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.bias$`), roles: ['QKV'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_proj\\.weight$`), roles: ['O', 'R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_proj\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.(bias|masked_bias)$`), roles: 'none' },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_fc\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_fc\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_proj\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_proj\\.bias$`), roles: ['R'] },
  { re: /^ln_f\.(weight|bias)$/, roles: ['R'] },
];

/** GPT-2's spec rules: Conv1D [in, out] weights, q|k|v packed in `c_attn`, heads with inner q/k and v/o permutations. */
const naming: TransformerNaming = {
  id: 'gpt2',
  detect: /^(.*?)h\.\d+\.attn\.c_attn\.weight$/,
  blockPrefix: 'h.',
  rules: GPT2_RULES,
  outsideRules: () => LM_HEAD_RULES,
  attention: { q: /^h\.\d+\.attn\.c_attn\.weight$/, packed: true },
  headsKey: '"n_head"',
  rotary: false,
  lmHead: true,
  notes: ['gpt-2 conv1d weights are stored [in, out]: their first axis reads the stream'],
};

/** Sizes from the shapes; tanh GELU and eps 1e-5 unless the model config says otherwise; every released size has head_dim 64. */
function gpt2FromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const p = namingPrefixOf(tensors, naming);
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

/** Where GPT-2's stream, heads and MLP units sit, for the orthogonal symmetry (core/symmetry/transformerLayout.ts). */
function gpt2OrthogonalLayout(tensors: TensorMap, config: LmConfig): TransformerLayout {
  const has = (n: string) => tensors.has(n);
  const opt = (n: string) => (has(n) ? n : undefined);
  const { layers, hidden, heads, kvHeads, headDim } = config;
  const blocks: BlockLayout[] = [];
  const p = has('transformer.wte.weight') ? 'transformer.' : '';
  const conv = (n: string): LinearLayer => ({ weight: `${n}.weight`, bias: opt(`${n}.bias`), storage: 'inOut' });
  for (let i = 0; i < layers; i++) {
    const h = `${p}h.${i}`;
    const attn = conv(`${h}.attn.c_attn`);
    const fc = conv(`${h}.mlp.c_fc`);
    blocks.push({
      attnNorm: { gain: `${h}.ln_1.weight`, bias: opt(`${h}.ln_1.bias`), readers: [attn] },
      mlpNorm: { gain: `${h}.ln_2.weight`, bias: opt(`${h}.ln_2.bias`), readers: [fc] },
      q: { layer: attn, offset: 0 },
      k: { layer: attn, offset: hidden },
      v: { layer: attn, offset: 2 * hidden },
      o: conv(`${h}.attn.c_proj`),
      mlpIn: [fc],
      mlpOut: conv(`${h}.mlp.c_proj`),
      mlpWidth: tensors.get(fc.weight)?.shape[1] ?? 0,
    });
  }
  return {
    arch: 'gpt2', hidden, heads, kvHeads, headDim, rotary: false, centered: true,
    embeddings: [`${p}wte.weight`, `${p}wpe.weight`], tokenEmbedding: `${p}wte.weight`, blocks,
    finalNorm: { gain: `${p}ln_f.weight`, bias: opt(`${p}ln_f.bias`) },
    head: { weight: 'lm_head.weight', storage: 'outIn' }, tied: config.tied,
  };
}

/** GPT2Config's keys (`n_layer`, `n_embd`, ...; the generic names as aliases), defaults and score-scaling options. */
const lm: Omit<CoreLm, 'prefix'> = {
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
  orthogonalLayout: gpt2OrthogonalLayout,
};

export const gpt2 = transformerFamily(naming, 'Transformer (GPT-2 naming)', lm);
