/**
 * Writes a checkpoint folder (Hugging Face `save_pretrained` layout) atomically: every shard, the
 * copied side files (config.json, tokenizer files) and, for a sharded checkpoint, the
 * `model.safetensors.index.json` (`weight_map` + `metadata.total_size`, as transformers and
 * huggingface_hub write it) go into a temporary folder beside the target, which is renamed into
 * place at the end. Shards are written one after the other and each tensor is read only when its
 * bytes are due (writeSafetensors), so memory holds one tensor at a time whatever the model size.
 * A cancel or a failure at any point removes the temporary folder: nothing is left behind.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { tensorSize } from './dtypes';
import { SafetensorsError, ioError, printable } from './errors';
import { isShardIndexPath, readShardIndex } from './sharded';
import { openSafetensors } from './reader';
import { writeSafetensors, type TensorSource } from './writer';

export interface ShardToWrite {
  /** File name inside the folder (e.g. `model-00001-of-00003.safetensors`). */
  readonly file: string;
  readonly tensors: readonly TensorSource[];
}

export interface WriteFolderOptions {
  readonly shards: readonly ShardToWrite[];
  /**
   * Written as `<index.file>` after every shard, with `metadata.total_size` recomputed from the
   * tensors written (other metadata keys kept). Omit for a single-file checkpoint.
   */
  readonly index?: { readonly file: string; readonly metadata?: Readonly<Record<string, unknown>> };
  /** Files copied into the folder under their own names (config.json, tokenizer files...). */
  readonly copy?: readonly string[];
  /** `__metadata__` of every shard. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Checkpoints (files or indexes) the output must not overwrite or contain. */
  readonly inputs?: readonly string[];
  readonly signal?: AbortSignal;
  /** Called before each shard is written (0-based), for progress. */
  readonly onShard?: (index: number, count: number, file: string) => void;
}

/** The metadata key our writers stamp on every output (provenanceMetadata): marks a folder we wrote. */
const OUR_MARK = 'rebasin.tool';

function checkAborted(signal: AbortSignal | undefined, out: string): void {
  if (signal?.aborted) throw new SafetensorsError('Aborted', out, 'write cancelled');
}

async function realOrSelf(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/** The files an input stands for: itself, and its shards when it is an index. */
async function inputFiles(input: string): Promise<string[]> {
  if (!isShardIndexPath(input)) return [input];
  try {
    return [input, ...(await readShardIndex(input)).shards];
  } catch {
    return [input];
  }
}

const inside = (dir: string, file: string): boolean => {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/** True when `dir` holds a checkpoint whose `__metadata__` carries our provenance mark. */
async function isOurOutput(dir: string): Promise<boolean> {
  const entries = await readdir(dir);
  const weights = entries.includes('model.safetensors')
    ? 'model.safetensors'
    : entries.find((e) => /^model-\d+-of-\d+\.safetensors$/.test(e));
  if (!weights) return false;
  try {
    const file = await openSafetensors(path.join(dir, weights));
    try {
      return OUR_MARK in file.metadata;
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
}

/**
 * What is at the target now: nothing, an empty folder, or an earlier output of ours (replaced).
 * Anything else is refused, and so is a target that is, or holds, one of the inputs.
 */
async function checkTarget(out: string, inputs: readonly string[]): Promise<'absent' | 'empty' | 'replace'> {
  const realOut = await realOrSelf(out);
  for (const input of inputs) {
    for (const file of await inputFiles(input)) {
      const real = await realOrSelf(file);
      if (inside(realOut, real)) {
        throw new SafetensorsError('OutputIsInput', out, `refusing to write over an input (\`${printable(path.basename(file))}\` is in this folder): choose another output folder`);
      }
    }
  }
  let isDir: boolean;
  try {
    isDir = (await stat(out)).isDirectory();
  } catch {
    return 'absent';
  }
  if (!isDir) throw new SafetensorsError('Io', out, 'exists and is not a folder: choose another output folder');
  const entries = await readdir(out);
  if (entries.length === 0) return 'empty';
  if (await isOurOutput(out)) return 'replace';
  throw new SafetensorsError('Io', out, 'folder is not empty and was not written by Re-Basin: choose a new or empty output folder');
}

/** Best-effort removal (cleanup after a failure must not hide the failure). */
const remove = (p: string): Promise<void> => rm(p, { recursive: true, force: true }).catch(() => undefined);

/**
 * Writes a checkpoint folder at `out` (see the module comment). `out` may not exist yet, be an
 * empty folder, or be an earlier Re-Basin output (replaced as a whole, only once the new folder is
 * complete); any other existing path is refused, and so is a folder holding an input.
 */
export async function writeCheckpointFolder(out: string, opts: WriteFolderOptions): Promise<void> {
  const { signal } = opts;
  out = path.resolve(out);
  checkAborted(signal, out);
  const names = new Set<string>();
  for (const s of opts.shards) {
    if (s.file !== path.basename(s.file) || !s.file.endsWith('.safetensors') || names.has(s.file)) {
      throw new SafetensorsError('InvalidIndex', out, `shard file name \`${printable(s.file)}\` is not a plain, unique .safetensors name`);
    }
    names.add(s.file);
  }
  const target = await checkTarget(out, opts.inputs ?? []);
  const parent = path.dirname(out);
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(out)}.${tag}.tmp`);
  try {
    await mkdir(tmp);
  } catch (cause) {
    throw ioError(out, `create a temporary folder in ${parent}`, cause);
  }
  try {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    let totalParameters = 0;
    for (let i = 0; i < opts.shards.length; i++) {
      const shard = opts.shards[i];
      checkAborted(signal, out);
      opts.onShard?.(i, opts.shards.length, shard.file);
      await writeSafetensors(path.join(tmp, shard.file), shard.tensors, { metadata: opts.metadata, signal });
      for (const t of shard.tensors) {
        const size = tensorSize(t.dtype, t.shape);
        if ('bytes' in size) {
          totalSize += size.bytes;
          totalParameters += size.elements;
        }
        weightMap[t.name] = shard.file;
      }
    }
    for (const file of opts.copy ?? []) {
      checkAborted(signal, out);
      await copyFile(file, path.join(tmp, path.basename(file))).catch((cause: unknown) => {
        throw ioError(out, `copy ${path.basename(file)}`, cause);
      });
    }
    if (opts.index) {
      checkAborted(signal, out);
      const metadata: Record<string, unknown> = { ...(opts.index.metadata ?? {}) };
      if ('total_parameters' in metadata) metadata.total_parameters = totalParameters;
      metadata.total_size = totalSize;
      const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
      await writeFile(path.join(tmp, opts.index.file), `${JSON.stringify({ metadata, weight_map: sorted }, null, 2)}\n`).catch((cause: unknown) => {
        throw ioError(out, `write ${opts.index!.file}`, cause);
      });
    }
    checkAborted(signal, out);
    await moveIntoPlace(tmp, out, target, tag);
  } catch (error) {
    await remove(tmp);
    throw error;
  }
}

/** Renames the finished folder into place; an earlier output is moved aside first and removed after. */
async function moveIntoPlace(tmp: string, out: string, target: 'absent' | 'empty' | 'replace', tag: string): Promise<void> {
  const fail = (cause: unknown): never => {
    throw ioError(out, 'move the finished folder into place', cause);
  };
  if (target === 'absent') {
    await rename(tmp, out).catch(fail);
    return;
  }
  if (target === 'empty') {
    await rmdir(out).catch(() => undefined);
    await rename(tmp, out).catch(fail);
    return;
  }
  const old = path.join(path.dirname(out), `.${path.basename(out)}.${tag}.old`);
  await rename(out, old).catch(fail);
  try {
    await rename(tmp, out);
  } catch (cause) {
    await rename(old, out).catch(() => undefined);
    fail(cause);
  }
  await remove(old);
}
