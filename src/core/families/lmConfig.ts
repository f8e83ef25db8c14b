/**
 * A Hugging Face `config.json`, read into what our LM forward passes need (no tfjs here, so
 * spec inference and the CLI can read it too). Keys follow `transformers`' config classes
 * (GPT2Config, LlamaConfig and its relatives, BertConfig). A key the file leaves out gets the
 * default its `model_type`'s config class gives it (CLASS_DEFAULTS, as transformers loads the
 * file), and `defaulted` lists each one so the caller can say so; a present key with a bad value
 * is one line naming the file and the key.
 *
 * Rotary settings come from `rope_theta` + `rope_scaling` (transformers 4) or `rope_parameters`
 * (transformers 5, e.g. `{"rope_theta": 10000, "rope_type": "default"}`).
 */
import { InputFileError, MAX_CONFIG_JSON_BYTES, readJsonObject } from '../files';
import * as path from 'node:path';
import { ModelError } from './modelErrors';

/** Forward-pass family: GPT-2 blocks, Llama-style decoder blocks (also Mistral, Qwen2/3, Gemma), BERT encoder. */
export type LmFamily = 'gpt2' | 'llama' | 'bert';

/** Hidden activations we compute: exact erf GELU, tanh GELU, ReLU, SiLU. */
export type LmActivation = 'gelu' | 'gelu_tanh' | 'relu' | 'silu';

/** Rotary position settings (`rope_type` "default", "linear", "dynamic", "llama3"). */
export interface RopeConfig {
  readonly theta: number;
  readonly type: 'default' | 'linear' | 'dynamic' | 'llama3';
  /** Scaling factor (linear, dynamic, llama3). */
  readonly factor: number;
  /** llama3: the context the frequencies were trained for, and the band edges. */
  readonly originalMaxPositions?: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  /** Inverse frequencies a checkpoint stores (`rotary_emb.inv_freq`, weights without config.json): used as they are. */
  readonly invFreq?: { readonly values: Float32Array; readonly tensor: string };
}

export interface LmConfig {
  /** The config.json read (for messages). */
  readonly file: string;
  readonly modelType: string;
  readonly family: LmFamily;
  /** Causal next-token prediction, or masked-LM (BERT). */
  readonly objective: 'causal' | 'masked';
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** MLP hidden width (`n_inner` / `intermediate_size`), when the config gives it (GPT-2: 4 x hidden by default). */
  readonly intermediate?: number;
  readonly vocab: number;
  /** The longest sequence the model takes (learned position rows, or the rotary context). */
  readonly maxPositions: number;
  readonly eps: number;
  readonly act: LmActivation;
  /** Output head tied to the token embedding. */
  readonly tied: boolean;
  readonly rope?: RopeConfig;
  /** Llama family: Gemma's RMSNorm scales by (1 + weight) and its embeddings by sqrt(hidden). */
  readonly gemma: boolean;
  /** Mistral/Qwen2 sliding-window attention span, when the config enables it. */
  readonly slidingWindow?: number;
  /** GPT-2: attention scores divided by sqrt(head_dim) (`scale_attn_weights`) and by layer index + 1 (`scale_attn_by_inverse_layer_idx`). */
  readonly scaleAttnWeights: boolean;
  readonly scaleAttnByLayer: boolean;
  /**
   * Built from the weights' shapes, no config.json (lmShapes.ts): where the head count came from,
   * and the output is whichever head the weights hold (Llama's `score`, BERT's task heads).
   */
  readonly fromShapes?: { readonly headsSource: string };
  /** Sizes the file left out and their class defaults, as `"max_position_embeddings" = 2048`. */
  readonly defaulted: readonly string[];
}

/** model_type -> family. Mistral, Qwen2/3 and Gemma are Llama blocks with small differences (see below). */
const FAMILIES: Readonly<Record<string, LmFamily>> = {
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'llama',
  qwen3: 'llama',
  gemma: 'llama',
  bert: 'bert',
};

/**
 * The sizes transformers' config classes give a key the file leaves out (the `__init__`
 * defaults of GPT2Config, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, GemmaConfig,
 * BertConfig). Absent here: derived from others (Llama's `num_key_value_heads` = heads,
 * `head_dim` = hidden / heads; GPT-2's `n_inner` = 4 x hidden). Mistral and Qwen2/3 default
 * `num_key_value_heads` to a number, not to the head count.
 */
const CLASS_DEFAULTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  gpt2: { n_layer: 12, n_embd: 768, n_head: 12, vocab_size: 50257, n_positions: 1024 },
  llama: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, vocab_size: 32000, max_position_embeddings: 2048, intermediate_size: 11008 },
  mistral: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 131072, intermediate_size: 14336, sliding_window: 4096 },
  qwen2: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 151936, max_position_embeddings: 32768, intermediate_size: 22016 },
  qwen3: { num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, vocab_size: 151936, max_position_embeddings: 32768, intermediate_size: 22016 },
  gemma: { num_hidden_layers: 28, hidden_size: 3072, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, vocab_size: 256000, max_position_embeddings: 8192, intermediate_size: 24576 },
  bert: { num_hidden_layers: 12, hidden_size: 768, num_attention_heads: 12, vocab_size: 30522, max_position_embeddings: 512, intermediate_size: 3072 },
};

/** The config class transformers loads for each model_type, to name it in messages. */
const CLASS_NAMES: Readonly<Record<string, string>> = {
  gpt2: 'GPT2Config', llama: 'LlamaConfig', mistral: 'MistralConfig', qwen2: 'Qwen2Config', qwen3: 'Qwen3Config', gemma: 'GemmaConfig', bert: 'BertConfig',
};

/**
 * One line saying which sizes `config` took from its class's defaults, naming the file by its
 * folder (`llama-a/config.json`: every model's file has the same name); undefined when none.
 */
export function defaultsNotice(config: LmConfig): string | undefined {
  if (config.defaulted.length === 0) return undefined;
  const where = `${path.basename(path.dirname(config.file))}/${path.basename(config.file)}`;
  return `${where}: no ${config.defaulted.join(', ')} given: using ${CLASS_NAMES[config.modelType] ?? 'the class'}'s default${config.defaulted.length > 1 ? 's' : ''}, as transformers does`;
}

/** Whether `model_type` has an LM forward pass here (its config.json is read by parseLmConfig). */
export function isLmModelType(modelType: unknown): modelType is string {
  return typeof modelType === 'string' && Object.hasOwn(FAMILIES, modelType);
}

/** Reads and interprets `config.json` (path to the file). */
export async function readLmConfig(file: string): Promise<LmConfig> {
  let json: Record<string, unknown>;
  try {
    json = await readJsonObject(file, MAX_CONFIG_JSON_BYTES, 'config.json');
  } catch (e) {
    if (!(e instanceof InputFileError)) throw e;
    const detail = e.kind === 'Io' && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? 'config.json not found (a Hugging Face folder has one beside the weights)' : e.detail;
    throw new ModelError('ConfigInvalid', `${file}: ${detail}`, file);
  }
  return parseLmConfig(json, file);
}

/** Interprets a parsed config.json object; `file` names it in messages. */
export function parseLmConfig(raw: Record<string, unknown>, file: string): LmConfig {
  const fail = (msg: string): never => {
    throw new ModelError('ConfigInvalid', `${file}: ${msg}`, file);
  };
  const modelType = raw.model_type;
  if (typeof modelType !== 'string') return fail('no "model_type": add it ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma" or "bert")');
  const family = FAMILIES[modelType];
  if (!family) throw new ModelError('Unsupported', `${file}: model_type "${modelType}" has no LM forward pass here (supported: ${Object.keys(FAMILIES).join(', ')})`, file);

  const classDefaults = CLASS_DEFAULTS[modelType] ?? {};
  const defaulted: string[] = [];
  /**
   * The first of `keys` present, as a positive integer; absent, the class default of the first
   * key (recorded in `defaulted`), else `fallback` (a value derived from others).
   */
  const int = (keys: readonly string[], what: string, fallback?: number): number => {
    for (const k of keys) {
      const v = raw[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(`"${k}" must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    }
    const byClass = classDefaults[keys[0]];
    if (byClass !== undefined) {
      defaulted.push(`"${keys[0]}" = ${byClass}`);
      return byClass;
    }
    if (fallback !== undefined) return fallback;
    return fail(`no ${keys.map((k) => `"${k}"`).join(' or ')}: add it (${what})`);
  };
  const num = (keys: readonly string[], fallback: number): number => {
    for (const k of keys) {
      const v = raw[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) return fail(`"${k}" must be a positive number, got ${JSON.stringify(v)}`);
      return v;
    }
    return fallback;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = raw[key];
    if (v === undefined || v === null) return fallback;
    return typeof v === 'boolean' ? v : fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
  };

  const gpt2 = family === 'gpt2';
  const layers = int(gpt2 ? ['n_layer', 'num_hidden_layers'] : ['num_hidden_layers'], 'the number of transformer blocks');
  const hidden = int(gpt2 ? ['n_embd', 'hidden_size'] : ['hidden_size'], 'the width of the residual stream');
  const heads = int(gpt2 ? ['n_head', 'num_attention_heads'] : ['num_attention_heads'], 'the number of attention heads');
  const vocab = int(['vocab_size'], 'the number of token ids');
  const maxPositions = int(gpt2 ? ['n_positions', 'max_position_embeddings'] : ['max_position_embeddings'], 'the longest sequence the model takes');
  const kvHeads = family === 'llama' ? int(['num_key_value_heads'], '', heads) : heads;
  const headDim = family === 'llama' ? int(['head_dim'], '', hidden / heads) : hidden / heads;
  if (!Number.isInteger(headDim)) fail(`${heads} attention heads do not divide the width ${hidden}: add "head_dim"`);
  if (heads % kvHeads !== 0) fail(`"num_key_value_heads" ${kvHeads} must divide "num_attention_heads" ${heads}`);

  const intermediate = gpt2 ? int(['n_inner'], '', 4 * hidden) : int(['intermediate_size'], 'the MLP width');
  const defaults = { gpt2: { eps: 1e-5, act: 'gelu_new', tied: true }, llama: { eps: 1e-6, act: 'silu', tied: false }, bert: { eps: 1e-12, act: 'gelu', tied: true } }[family];
  const gemma = modelType === 'gemma';
  const eps = num(gpt2 ? ['layer_norm_epsilon'] : family === 'bert' ? ['layer_norm_eps'] : ['rms_norm_eps'], defaults.eps);
  // Gemma names its MLP activation `hidden_activation` (gelu_pytorch_tanh); others use hidden_act / activation_function.
  const actKey = gpt2 ? 'activation_function' : gemma && raw.hidden_activation !== undefined ? 'hidden_activation' : 'hidden_act';
  const act = activation(raw[actKey] ?? (gemma ? 'gelu_pytorch_tanh' : defaults.act), actKey, fail);
  const tied = bool('tie_word_embeddings', gemma ? true : defaults.tied);

  const rope = family === 'llama' ? ropeConfig(raw, fail) : undefined;
  if (family === 'llama' && raw.partial_rotary_factor !== undefined && raw.partial_rotary_factor !== 1) {
    throw new ModelError('Unsupported', `${file}: partial rotary embeddings ("partial_rotary_factor" ${JSON.stringify(raw.partial_rotary_factor)}) are not supported`, file);
  }
  if (family === 'llama' && rope && headDim % 2 !== 0) fail(`rotary embeddings need an even head_dim, got ${headDim}`);
  let slidingWindow: number | undefined;
  // Qwen2 writes sliding_window but only uses it with use_sliding_window true; Mistral's class
  // defaults it to 4096 (an explicit null turns it off).
  const sw = raw.sliding_window === undefined && modelType === 'mistral' ? int(['sliding_window'], '') : raw.sliding_window;
  if (family === 'llama' && typeof sw === 'number' && sw > 0 && (modelType !== 'qwen2' && modelType !== 'qwen3' ? true : raw.use_sliding_window === true)) slidingWindow = sw;

  if (family === 'bert') {
    const pet = raw.position_embedding_type;
    if (pet !== undefined && pet !== 'absolute') throw new ModelError('Unsupported', `${file}: BERT "position_embedding_type" ${JSON.stringify(pet)} is not supported (only "absolute")`, file);
  }
  return {
    file,
    modelType,
    family,
    objective: family === 'bert' ? 'masked' : 'causal',
    layers,
    hidden,
    heads,
    kvHeads,
    headDim,
    ...(intermediate !== undefined ? { intermediate } : {}),
    vocab,
    maxPositions,
    eps,
    act,
    tied,
    rope,
    gemma,
    slidingWindow,
    scaleAttnWeights: gpt2 ? bool('scale_attn_weights', true) : true,
    scaleAttnByLayer: gpt2 ? bool('scale_attn_by_inverse_layer_idx', false) : false,
    defaulted,
  };
}

function activation(v: unknown, key: string, fail: (msg: string) => never): LmActivation {
  switch (v) {
    case 'gelu':
      return 'gelu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'relu':
      return 'relu';
    case 'silu':
    case 'swish':
      return 'silu';
    default:
      return fail(`"${key}" ${JSON.stringify(v)} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)`);
  }
}

/** Rotary settings from `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (4). */
function ropeConfig(raw: Record<string, unknown>, fail: (msg: string) => never): RopeConfig {
  const params = raw.rope_parameters;
  const scaling = raw.rope_scaling;
  const obj = (v: unknown, key: string): Record<string, unknown> | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) return fail(`"${key}" must be an object`);
    return v as Record<string, unknown>;
  };
  const p = obj(params, 'rope_parameters') ?? obj(scaling, 'rope_scaling') ?? {};
  const key = params !== undefined && params !== null ? 'rope_parameters' : 'rope_scaling';
  const thetaRaw = p.rope_theta ?? raw.rope_theta ?? 10000;
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
