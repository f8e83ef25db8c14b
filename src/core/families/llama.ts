/** Llama and its namesakes (`layers.N.self_attn.q_proj`, RMSNorm, rotary embeddings, gated MLP). */
import type { TensorMap } from '../checkpoint';
import { SymmetryUnsupported } from '../symmetry/errors';
import type { BlockLayout, LinearLayer, TransformerLayout } from '../symmetry/transformerLayout';
import { LM_HEAD_RULES, N, type Rule, type TransformerNaming } from '../permspec/inferTransformer';
import { HF_SIZE_KEYS, type CoreLm, type LmConfig, type LmConfigReader, type RopeConfig } from './lm';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { ModelError } from './modelErrors';
import { namingPrefixOf, transformerFamily } from './transformer';

// Each regex matches a name relative to the model prefix; group 1 is the block number when present.
export const LLAMA_RULES: readonly Rule[] = [
  { re: /^embed_tokens\.weight$/, roles: [null, 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.(input|post_attention|pre_feedforward|post_feedforward)_layernorm\\.(weight|bias)$`), roles: ['R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_proj\\.weight$`), roles: ['Q', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_proj\\.weight$`), roles: ['K', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.v_proj\\.weight$`), roles: ['V', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_proj\\.bias$`), roles: ['Q'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_proj\\.bias$`), roles: ['K'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.v_proj\\.bias$`), roles: ['V'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_norm\\.weight$`), roles: ['QN'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_norm\\.weight$`), roles: ['KN'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.o_proj\\.weight$`), roles: ['R', 'O'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.o_proj\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.rotary_emb\\.inv_freq$`), roles: 'none' },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.(gate|up)_proj\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.(gate|up)_proj\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.down_proj\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.down_proj\\.bias$`), roles: ['R'] },
  { re: /^norm\.(weight|bias)$/, roles: ['R'] },
  { re: /^rotary_emb\.inv_freq$/, roles: 'none' },
];

/** The Llama naming's spec rules: rotary q/k (no inner permutation), grouped-query KV groups, gated MLP. */
export const LLAMA_NAMING: TransformerNaming = {
  id: 'llama',
  detect: /^(.*?)layers\.\d+\.self_attn\.q_proj\.weight$/,
  blockPrefix: 'layers.',
  rules: LLAMA_RULES,
  outsideRules: () => LM_HEAD_RULES,
  attention: { q: /^layers\.\d+\.self_attn\.q_proj\.weight$/, k: /^layers\.\d+\.self_attn\.k_proj\.weight$/ },
  headsKey: '"num_attention_heads"',
  rotary: true,
  lmHead: true,
  notes: [],
};

/**
 * Sizes from the shapes; head_dim from the rotary `inv_freq` buffer or Qwen3's `q_norm` when the
 * file holds one, else 64 or 128 when only one divides the width; the rotary frequencies from
 * the buffer, else base `ropeTheta` (10000). No position table: any length runs.
 */
export function llamaFromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const p = namingPrefixOf(tensors, LLAMA_NAMING);
  const [vocab, hidden] = shapeOf(tensors, `${p}embed_tokens.weight`, 2);
  const layers = countBlocks(tensors, `${p}layers.`);
  const l0 = `${p}layers.0`;
  const qWidth = shapeOf(tensors, `${l0}.self_attn.q_proj.weight`, 2)[0];
  const kWidth = shapeOf(tensors, `${l0}.self_attn.k_proj.weight`, 2)[0];
  const freqName = [`${l0}.self_attn.rotary_emb.inv_freq`, `${p}rotary_emb.inv_freq`].find((n) => tensors.has(n));
  const qNormName = `${l0}.self_attn.q_norm.weight`;
  const shown = freqName
    ? { headDim: 2 * shapeOf(tensors, freqName, 1)[0], tensor: freqName }
    : tensors.has(qNormName) ? { headDim: shapeOf(tensors, qNormName, 1)[0], tensor: qNormName } : undefined;
  const hc = resolveHeads('llama', [64, 128], qWidth, opts, shown);
  const kvHeads = kWidth / hc.headDim;
  if (!Number.isInteger(kvHeads) || hc.heads % kvHeads !== 0) {
    throw new ModelError('ShapeMismatch', `transformer: k_proj width ${kWidth} is not a whole number of key/value heads dividing ${hc.heads} heads of ${hc.headDim}`);
  }
  if (opts.kvHeads !== undefined && opts.kvHeads !== kvHeads) {
    throw new ModelError('ConfigInvalid', `model config: kvHeads ${opts.kvHeads} does not match k_proj's width ${kWidth} (${kvHeads} heads of ${hc.headDim})`);
  }
  if (hc.headDim % 2 !== 0) throw new ModelError('Unsupported', `transformer: rotary embeddings need an even head_dim, got ${hc.headDim}`);
  const theta = opts.ropeTheta ?? 10000;
  const invFreq = freqName ? { values: Float32Array.from(tensors.get(freqName)!.data), tensor: freqName } : undefined;
  return {
    ...FROM_SHAPES, modelType: 'llama', family: 'llama', objective: 'causal', layers, hidden, heads: hc.heads, kvHeads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${l0}.mlp.gate_proj.weight`, 2)[0], vocab, maxPositions: Number.MAX_SAFE_INTEGER,
    eps: opts.eps ?? 1e-5, act: 'silu', tied: !tensors.has('lm_head.weight') && !tensors.has('score.weight'),
    rope: { theta, type: 'default', factor: 1, ...(invFreq ? { invFreq } : {}) },
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

/**
 * Rotary settings from `rope_parameters` (transformers 5, e.g. `{"rope_theta": 10000, "rope_type": "default"}`)
 * or `rope_theta` + `rope_scaling` (transformers 4).
 */
function ropeConfig(raw: Readonly<Record<string, unknown>>, fail: (msg: string) => never, defaultTheta: number): RopeConfig {
  const params = raw.rope_parameters;
  const scaling = raw.rope_scaling;
  const obj = (v: unknown, key: string): Record<string, unknown> | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) return fail(`"${key}" must be an object`);
    return v as Record<string, unknown>;
  };
  const p = obj(params, 'rope_parameters') ?? obj(scaling, 'rope_scaling') ?? {};
  const key = params !== undefined && params !== null ? 'rope_parameters' : 'rope_scaling';
  const thetaRaw = p.rope_theta ?? raw.rope_theta ?? defaultTheta;
  if (typeof thetaRaw !== 'number' || !(thetaRaw > 0)) return fail(`"rope_theta" must be a positive number, got ${JSON.stringify(thetaRaw)}`);
  const typeRaw = p.rope_type ?? p.type ?? 'default';
  const factorOf = (): number => {
    const f = p.factor;
    return typeof f === 'number' && f > 0 ? f : fail(`"${key}" of type "${String(typeRaw)}" needs a positive "factor"`);
  };
  switch (typeRaw) {
    case 'default':
      return { theta: thetaRaw, type: 'default', factor: 1 };
    case 'linear':
      return { theta: thetaRaw, type: 'linear', factor: factorOf() };
    case 'dynamic':
      return { theta: thetaRaw, type: 'dynamic', factor: factorOf() };
    case 'llama3': {
      const n = (k: string): number => {
        const v = p[k];
        return typeof v === 'number' && v > 0 ? v : fail(`"${key}" of type "llama3" needs a positive "${k}"`);
      };
      return { theta: thetaRaw, type: 'llama3', factor: factorOf(), originalMaxPositions: n('original_max_position_embeddings'), lowFreqFactor: n('low_freq_factor'), highFreqFactor: n('high_freq_factor') };
    }
    default:
      return fail(`"${key}" type ${JSON.stringify(typeRaw)} is not supported (default, linear, dynamic, llama3)`);
  }
}

/**
 * The keys of Llama's attention (rotary settings, no partial rotary, even head_dim) and its
 * sliding window, read the same by the families with Llama's attention (Mixtral); `defaultTheta`
 * is the config class's rotary base.
 */
export function llamaAttentionKeys(r: LmConfigReader, { headDim }: { readonly headDim: number }, defaultTheta: number): { rope: RopeConfig; slidingWindow?: number } {
  const rope = ropeConfig(r.raw, r.fail, defaultTheta);
  if (r.raw.partial_rotary_factor !== undefined && r.raw.partial_rotary_factor !== 1) {
    throw new ModelError('Unsupported', `${r.file}: partial rotary embeddings ("partial_rotary_factor" ${JSON.stringify(r.raw.partial_rotary_factor)}) are not supported`, r.file);
  }
  if (headDim % 2 !== 0) r.fail(`rotary embeddings need an even head_dim, got ${headDim}`);
  // Qwen2 writes sliding_window but only uses it with use_sliding_window true; Mistral's class
  // defaults it to 4096 (an explicit null turns it off).
  const sw = r.raw.sliding_window === undefined && r.modelType === 'mistral' ? r.int(['sliding_window'], '') : r.raw.sliding_window;
  const uses = r.modelType !== 'qwen2' && r.modelType !== 'qwen3' ? true : r.raw.use_sliding_window === true;
  return { rope, ...(typeof sw === 'number' && sw > 0 && uses ? { slidingWindow: sw } : {}) };
}

/** Where a Llama-family model's stream, heads and MLP units sit, for the orthogonal symmetry (core/symmetry/transformerLayout.ts). */
export function llamaOrthogonalLayout(tensors: TensorMap, config: LmConfig): TransformerLayout {
  const where = config.file;
  const has = (n: string) => tensors.has(n);
  const opt = (n: string) => (has(n) ? n : undefined);
  const { layers, hidden, heads, kvHeads, headDim } = config;
  const blocks: BlockLayout[] = [];
  const p = has('model.embed_tokens.weight') ? 'model.' : '';
  const lin = (n: string): LinearLayer => ({ weight: `${n}.weight`, bias: opt(`${n}.bias`), storage: 'outIn' });
  for (let i = 0; i < layers; i++) {
    const l = `${p}layers.${i}`;
    if (has(`${l}.self_attn.q_norm.weight`)) throw new SymmetryUnsupported(`${where}: per-head q/k norms (Qwen3) are not handled by the orthogonal symmetry yet`);
    const [q, k, v] = ['q', 'k', 'v'].map((x) => lin(`${l}.self_attn.${x}_proj`));
    const [gate, up] = [lin(`${l}.mlp.gate_proj`), lin(`${l}.mlp.up_proj`)];
    blocks.push({
      attnNorm: { gain: `${l}.input_layernorm.weight`, readers: [q, k, v] },
      mlpNorm: { gain: `${l}.post_attention_layernorm.weight`, readers: [gate, up] },
      q: { layer: q, offset: 0 },
      k: { layer: k, offset: 0 },
      v: { layer: v, offset: 0 },
      o: lin(`${l}.self_attn.o_proj`),
      mlpIn: [gate, up],
      mlpOut: lin(`${l}.mlp.down_proj`),
      mlpWidth: tensors.get(gate.weight)?.shape[0] ?? 0,
    });
  }
  return {
    arch: 'llama', hidden, heads, kvHeads, headDim, rotary: true, centered: false,
    embeddings: [`${p}embed_tokens.weight`], tokenEmbedding: `${p}embed_tokens.weight`, blocks,
    finalNorm: { gain: `${p}norm.weight` },
    head: { weight: 'lm_head.weight', bias: opt('lm_head.bias'), storage: 'outIn' }, tied: config.tied,
  };
}

/**
 * LlamaConfig and its relatives' keys and class defaults (Mistral and Qwen2/3 default
 * `num_key_value_heads` to a number, not to the head count), rotary settings, sliding window.
 */
const lm: Omit<CoreLm, 'prefix'> = {
  modelTypes: {
    llama: { className: 'LlamaConfig', defaults: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, vocab_size: 32000, max_position_embeddings: 2048, intermediate_size: 11008 } },
    mistral: { className: 'MistralConfig', defaults: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 131072, intermediate_size: 14336, sliding_window: 4096 } },
    qwen2: { className: 'Qwen2Config', defaults: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 151936, max_position_embeddings: 32768, intermediate_size: 22016 } },
    qwen3: { className: 'Qwen3Config', defaults: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, vocab_size: 151936, max_position_embeddings: 32768, intermediate_size: 22016 } },
    gemma: { className: 'GemmaConfig', defaults: { num_hidden_layers: 28, hidden_size: 3072, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, vocab_size: 256000, max_position_embeddings: 8192, intermediate_size: 24576 } },
  },
  objective: 'causal',
  keys: { ...HF_SIZE_KEYS, eps: 'rms_norm_eps' },
  defaults: { eps: 1e-6, act: 'silu', tied: false },
  groupedQuery: true,
  extra: (r, common) => llamaAttentionKeys(r, common, 10000),
  fromShapes: llamaFromShapes,
  orthogonalLayout: llamaOrthogonalLayout,
};

export const llama = transformerFamily(LLAMA_NAMING, 'Transformer (Llama naming)', lm);
