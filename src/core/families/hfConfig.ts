/** The Hugging Face `config.json` beside a checkpoint, as far as family detection and spec inference need it. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { readJsonObjectSync } from '../files';
import { isLmModelType, parseLmConfig } from './lmConfig';
import type { HfConfig } from './family';

/** Larger files are not a model config: skip them rather than read them. */
const MAX_BYTES = 1 << 20;

/**
 * A JSON object from `file`, or undefined when it is absent. Read by the one capped reader of
 * JSON side files (a FIFO or device never blocks); one that cannot be read, parsed, or is not an
 * object is refused in one line naming it: ignored, it left inference asking for keys it holds.
 */
function readJson(file: string, what: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  return readJsonObjectSync(file, MAX_BYTES, what);
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * `model_type` and the attention head counts from `config.json` in the checkpoint's folder,
 * with `heads` / `kvHeads` of the model config (`modelConfigPath`, the `--model` file, else
 * `<checkpoint>.rebasin.json`) taking precedence; undefined when neither file gives anything
 * (detection then goes by names). A language model's config.json (a model_type with an LM
 * forward pass) is read as align reads it (parseLmConfig: the same class defaults, the same
 * refusals), so `spec` and `align` agree on its heads.
 */
export function readHfConfig(checkpointPath: string, modelConfigPath?: string): HfConfig | undefined {
  const configFile = path.join(path.dirname(checkpointPath), 'config.json');
  const raw = readJson(configFile, 'config.json');
  const model = readJson(modelConfigPath ?? `${checkpointPath}.rebasin.json`, 'model config');
  if (!raw && !model) return undefined;
  const out: { -readonly [K in keyof HfConfig]: HfConfig[K] } = {};
  if (raw && typeof raw.model_type === 'string') out.model_type = raw.model_type;
  const lm = raw && modelConfigPath === undefined && isLmModelType(raw.model_type) ? parseLmConfig(raw, configFile) : undefined;
  const heads = positiveInt(model?.heads) ?? lm?.heads ?? positiveInt(raw?.num_attention_heads) ?? positiveInt(raw?.n_head);
  const kvHeads = positiveInt(model?.kvHeads) ?? lm?.kvHeads ?? positiveInt(raw?.num_key_value_heads);
  const headDim = lm?.headDim ?? positiveInt(raw?.head_dim);
  if (heads !== undefined) out.heads = heads;
  if (kvHeads !== undefined) out.kvHeads = kvHeads;
  if (headDim !== undefined) out.headDim = headDim;
  const expertsPerToken = positiveInt(raw?.num_experts_per_tok);
  if (expertsPerToken !== undefined) out.expertsPerToken = expertsPerToken;
  return out;
}
