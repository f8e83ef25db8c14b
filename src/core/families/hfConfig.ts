/** The Hugging Face `config.json` beside a checkpoint, as far as family detection needs it. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { HfConfig } from './family';

/** Larger files are not a model config: skip them rather than read them. */
const MAX_BYTES = 1 << 20;

/** `model_type` from `config.json` in the checkpoint's folder; undefined when absent or unreadable (detection then goes by names). */
export function readHfConfig(checkpointPath: string): HfConfig | undefined {
  const file = path.join(path.dirname(checkpointPath), 'config.json');
  try {
    if (!existsSync(file) || statSync(file).size > MAX_BYTES) return undefined;
    const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof raw !== 'object' || raw === null) return undefined;
    const t = (raw as Record<string, unknown>).model_type;
    return typeof t === 'string' ? { model_type: t } : {};
  } catch {
    return undefined;
  }
}
