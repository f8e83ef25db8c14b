/**
 * A Hugging Face `config.json`, read into what our LM forward passes need (no tfjs here, so
 * spec inference and the CLI can read it too). Keys follow `transformers`' config classes
 * (GPT2Config, LlamaConfig and its relatives, BertConfig). A key the file leaves out gets the
 * default its `model_type`'s config class gives it (the family's `lm.modelTypes`, as transformers
 * loads the file), and `defaulted` lists each one so the caller can say so; a present key with a bad value
 * is one line naming the file and the key.
 * Each family's core module names its keys and class defaults (`CoreFamily.lm`); its own keys
 * (Llama's rotary settings, GPT-2's score scaling) are read there.
 */
import { InputFileError, MAX_CONFIG_JSON_BYTES, readJsonObject } from '../files';
import * as path from 'node:path';
import { ModelError } from './modelErrors';
import type { FamilyId } from './family';
import type { CoreLm, LmActivation, LmConfig, LmConfigReader } from './lm';
import { CORE_FAMILIES } from './registry';

export type { LmActivation, LmConfig, RopeConfig } from './lm';

/** The family whose forward pass reads config.json's `model_type`, with that type's class (names, defaults). */
function lmOf(modelType: string): { lm: CoreLm; family: FamilyId } | undefined {
  for (const f of CORE_FAMILIES) if (f.lm && Object.hasOwn(f.lm.modelTypes, modelType)) return { lm: f.lm, family: f.id };
  return undefined;
}

/** Every `model_type` with an LM forward pass, in registry order. */
function lmModelTypes(): string[] {
  return CORE_FAMILIES.flatMap((f) => Object.keys(f.lm?.modelTypes ?? {}));
}

/**
 * One line saying which sizes `config` took from its class's defaults, naming the file by its
 * folder (`llama-a/config.json`: every model's file has the same name); undefined when none.
 */
export function defaultsNotice(config: LmConfig): string | undefined {
  if (config.defaulted.length === 0) return undefined;
  const where = `${path.basename(path.dirname(config.file))}/${path.basename(config.file)}`;
  return `${where}: no ${config.defaulted.join(', ')} given: using ${lmOf(config.modelType)?.lm.modelTypes[config.modelType].className ?? 'the class'}'s default${config.defaulted.length > 1 ? 's' : ''}, as transformers does`;
}

/** Whether `model_type` has an LM forward pass here (its config.json is read by parseLmConfig). */
export function isLmModelType(modelType: unknown): modelType is string {
  return typeof modelType === 'string' && lmOf(modelType) !== undefined;
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
  if (typeof modelType !== 'string') return fail(`no "model_type": add it (${lmModelTypes().map((t) => `"${t}"`).join(', ').replace(/, ([^,]*)$/, ' or $1')})`);
  const found = lmOf(modelType);
  if (!found) throw new ModelError('Unsupported', `${file}: model_type "${modelType}" has no LM forward pass here (supported: ${lmModelTypes().join(', ')})`, file);
  const { lm, family } = found;

  const classDefaults = lm.modelTypes[modelType].defaults;
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
  const reader: LmConfigReader = { raw, file, modelType, int, num, bool, fail };

  const { keys, defaults } = lm;
  const layers = int(keys.layers, 'the number of transformer blocks');
  const hidden = int(keys.hidden, 'the width of the residual stream');
  const heads = int(keys.heads, 'the number of attention heads');
  const vocab = int(['vocab_size'], 'the number of token ids');
  const maxPositions = int(keys.positions, 'the longest sequence the model takes');
  const kvHeads = lm.groupedQuery ? int(['num_key_value_heads'], '', heads) : heads;
  const headDim = lm.groupedQuery ? int(['head_dim'], '', hidden / heads) : hidden / heads;
  if (!Number.isInteger(headDim)) fail(`${heads} attention heads do not divide the width ${hidden}: add "head_dim"`);
  if (heads % kvHeads !== 0) fail(`"num_key_value_heads" ${kvHeads} must divide "num_attention_heads" ${heads}`);

  const intermediate = int([keys.intermediate], defaults.intermediate ? '' : 'the MLP width', defaults.intermediate?.(hidden));
  const gemma = modelType === 'gemma';
  const eps = num([keys.eps], defaults.eps);
  // Gemma names its MLP activation `hidden_activation` (gelu_pytorch_tanh); others use hidden_act / activation_function.
  const actKey = gemma && raw.hidden_activation !== undefined ? 'hidden_activation' : keys.act;
  const act = activation(raw[actKey] ?? (gemma ? 'gelu_pytorch_tanh' : defaults.act), actKey, fail);
  const tied = bool('tie_word_embeddings', gemma ? true : defaults.tied);
  const extra = lm.extra?.(reader, { headDim }) ?? {};
  return {
    file,
    modelType,
    family,
    objective: lm.objective,
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
    rope: extra.rope,
    ...(extra.experts ? { experts: extra.experts } : {}),
    gemma,
    slidingWindow: extra.slidingWindow,
    scaleAttnWeights: extra.scaleAttnWeights ?? true,
    scaleAttnByLayer: extra.scaleAttnByLayer ?? false,
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
