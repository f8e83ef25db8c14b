/**
 * The output checks every writing request makes before any work (Git Re-Basin runs can take
 * minutes): `out` is none of the files the request reads, not a folder/FIFO/device, and its
 * folder exists and is writable.
 */
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { checkFolderOutput, locateCheckpoint, writesFolder } from '../core/hf/layout';
import { SafetensorsError, assertOutputTarget } from '../core/safetensors';
import { EngineError } from './errors';
import { labelsFileCandidates } from '../core/data';
import type { DataOptions } from './protocol';

export interface ReadFiles {
  readonly spec?: string;
  readonly model?: string;
  readonly data?: DataOptions;
}

/** Plain files a request reads besides its checkpoints: spec, model config (given or default beside A), data (and labels beside it), tokenizer. */
export function otherReads(req: ReadFiles, a: string): string[] {
  const files = [req.spec, req.model ?? `${a}.rebasin.json`, req.data?.tokenizer];
  const data = req.data?.path;
  if (data !== undefined) {
    files.push(data);
    // An .npy of images is read with its labels beside it.
    if (/\.npy$/i.test(data)) files.push(...labelsFileCandidates(data).map((n) => path.join(path.dirname(data), n)));
    try {
      if (statSync(data).isDirectory()) {
        for (const name of readdirSync(data)) if (/idx\d-ubyte(\.gz)?$/i.test(name)) files.push(path.join(data, name));
      }
    } catch {
      // the data reader reports a missing path in its own words
    }
  }
  return files.filter((f): f is string => f !== undefined);
}

/**
 * Throws (one line naming `out`, wire kind `InvalidRequest` as before) when `out` cannot or must not
 * be written. `layoutOf` is the input whose layout the output follows (a folder for a Hugging Face one).
 */
export async function checkOutput(out: string, checkpoints: readonly string[], req: ReadFiles, layoutOf: string): Promise<void> {
  try {
    const layouts = checkpoints.map(locateCheckpoint);
    const folder = writesFolder(locateCheckpoint(layoutOf), out);
    const reads = otherReads(req, layouts[0].weights);
    await assertOutputTarget(out, layouts.map((l) => l.weights), reads, { folder });
    if (folder) await checkFolderOutput(out, layoutOf, checkpoints, reads);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new EngineError('InvalidRequest', e.message, out, { cause: e });
    throw e;
  }
}
