/** The Hugging Face `config.json` beside a checkpoint, as far as family detection and spec inference need it. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { readBoundedFileSync, utf8Text } from '../files';
import type { HfConfig } from './family';

/** Larger files are not a model config: skip them rather than read them. */
const MAX_BYTES = 1 << 20;

/**
 * A JSON object from `file`, or undefined when it is absent, too large or not an object. Only a
 * regular file is read (a FIFO or device never blocks): for the file the user named (`--model`)
 * anything else is refused in one line naming it; a `config.json` that is not one is ignored.
 */
function readJson(file: string, named = false): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  let text: string;
  try {
    text = utf8Text(readBoundedFileSync(file, MAX_BYTES, 'model config'));
  } catch (e) {
    if (named) throw e;
    return undefined;
  }
  try {
    const raw: unknown = JSON.parse(text);
    return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * `model_type` and the attention head counts from `config.json` in the checkpoint's folder,
 * with `heads` / `kvHeads` of the model config (`modelConfigPath`, the `--model` file, else
 * `<checkpoint>.rebasin.json`) taking precedence; undefined when
 * neither file gives anything (detection then goes by names).
 */
export function readHfConfig(checkpointPath: string, modelConfigPath?: string): HfConfig | undefined {
  const raw = readJson(path.join(path.dirname(checkpointPath), 'config.json'));
  const model = readJson(modelConfigPath ?? `${checkpointPath}.rebasin.json`, modelConfigPath !== undefined);
  if (!raw && !model) return undefined;
  const out: { model_type?: string; heads?: number; kvHeads?: number; headDim?: number } = {};
  if (raw && typeof raw.model_type === 'string') out.model_type = raw.model_type;
  const heads = positiveInt(model?.heads) ?? positiveInt(raw?.num_attention_heads) ?? positiveInt(raw?.n_head);
  const kvHeads = positiveInt(model?.kvHeads) ?? positiveInt(raw?.num_key_value_heads);
  const headDim = positiveInt(raw?.head_dim);
  if (heads !== undefined) out.heads = heads;
  if (kvHeads !== undefined) out.kvHeads = kvHeads;
  if (headDim !== undefined) out.headDim = headDim;
  return out;
}
