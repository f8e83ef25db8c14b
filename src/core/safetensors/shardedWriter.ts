/**
 * Writes a checkpoint folder (Hugging Face `save_pretrained` layout) atomically: every shard, the
 * copied side files (config.json, tokenizer files) and, for a sharded checkpoint, the
 * `model.safetensors.index.json` (`weight_map` + `metadata.total_size`, as transformers and
 * huggingface_hub write it) go into a temporary folder beside the target, which is renamed into
 * place at the end. Shards are written one after the other and each tensor is read only when its
 * bytes are due (writeSafetensors), so memory holds one tensor at a time whatever the model size.
 * A cancel or a failure at any point removes the temporary folder: nothing is left behind; the
 * temporary folders of a killed run are removed by the next write beside them.
 *
 * Every folder written holds a manifest (`.rebasin-output.json`) listing the files written. A
 * later write into that folder replaces exactly those files, and is refused when anything else
 * is there (a file added since, a subfolder): what a user put in a folder is never deleted.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { tensorSize } from './dtypes';
import { InputFileError, readBoundedFile } from '../files';
import { SafetensorsError, ioError, printable } from './errors';
import { isShardIndexPath, readShardIndex } from './sharded';
import { processIsGone, writeSafetensors, type TensorSource } from './writer';

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
  /** Side files written with the given text instead of a copy of the same name (a rewritten config.json). */
  readonly files?: Readonly<Record<string, string>>;
  /** `__metadata__` of every shard. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Checkpoints (files or indexes) the output must not overwrite or contain. */
  readonly inputs?: readonly string[];
  /** Other files (or folders) the command reads (spec, model config, data, tokenizer): not inside the output either. */
  readonly alsoReads?: readonly string[];
  readonly signal?: AbortSignal;
  /** Called before each shard is written (0-based), for progress. */
  readonly onShard?: (index: number, count: number, file: string) => void;
}

/** The manifest of an output folder: the files we wrote there (see the module comment). */
export const OUTPUT_MANIFEST = '.rebasin-output.json';

/** Side files copied into an output are read whole: released tokenizers are up to ~35 MB. */
export const MAX_COMPANION_BYTES = 100_000_000;

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

/**
 * Refuses an output folder that is, or holds, a file the command reads: a checkpoint (and its
 * shards) or any of `alsoReads` (spec, model config, data, tokenizer), through symlinks too.
 */
export async function assertHoldsNoInput(out: string, inputs: readonly string[], alsoReads: readonly string[] = []): Promise<void> {
  const realOut = await realOrSelf(out);
  const files = [...(await Promise.all(inputs.map(inputFiles))).flat(), ...alsoReads];
  for (const file of files) {
    if (inside(realOut, await realOrSelf(file)) || inside(path.resolve(out), path.resolve(file))) {
      throw new SafetensorsError('OutputIsInput', out, `refusing to write over an input (\`${printable(path.basename(file))}\` is in this folder): choose another output folder`);
    }
  }
}

/** The files a manifest lists, or undefined when there is none or it is not one of ours. */
async function readManifest(dir: string): Promise<Set<string> | undefined> {
  try {
    const json: unknown = JSON.parse((await readBoundedFile(path.join(dir, OUTPUT_MANIFEST), 1_000_000, 'manifest')).toString('utf8'));
    if (typeof json !== 'object' || json === null || !('tool' in json) || json.tool !== 'rebasin' || !('files' in json) || !Array.isArray(json.files)) return undefined;
    const files = json.files as unknown[];
    if (!files.every((f): f is string => typeof f === 'string' && f === path.basename(f) && f !== '' && f !== '.' && f !== '..')) return undefined;
    return new Set(files);
  } catch {
    return undefined;
  }
}

type Target = { readonly kind: 'absent' } | { readonly kind: 'empty' } | { readonly kind: 'replace'; readonly files: ReadonlySet<string> };

/**
 * What is at the target now: nothing, an empty folder, or an earlier output of ours holding only
 * the files its manifest lists (those are replaced). Anything else is refused, and so is a target
 * that is, or holds, a file the command reads.
 */
async function checkTarget(out: string, inputs: readonly string[], alsoReads: readonly string[]): Promise<Target> {
  await assertHoldsNoInput(out, inputs, alsoReads);
  let isDir: boolean;
  try {
    isDir = (await stat(out)).isDirectory();
  } catch {
    return { kind: 'absent' };
  }
  if (!isDir) throw new SafetensorsError('Io', out, 'exists and is not a folder: choose another output folder');
  const entries = await readdir(out);
  if (entries.length === 0) return { kind: 'empty' };
  const files = await readManifest(out);
  if (!files) throw new SafetensorsError('Io', out, `folder is not empty and was not written by Re-Basin (no ${OUTPUT_MANIFEST}): choose a new or empty output folder`);
  for (const name of entries.sort()) {
    if (name === OUTPUT_MANIFEST) continue;
    const s = await lstat(path.join(out, name)).catch(() => undefined);
    if (!s) continue; // gone since the listing
    if (!files.has(name) || !s.isFile()) {
      const what = s.isDirectory() ? 'the folder' : s.isFile() ? 'the file' : 'the entry';
      throw new SafetensorsError('Io', out, `folder holds ${what} \`${printable(name)}\`, which Re-Basin did not write: move it out or choose another output folder`);
    }
  }
  return { kind: 'replace', files };
}

/**
 * Everything about a folder output that can be known before any work (see checkTarget), and the
 * side files to copy: each a regular file (or a link to one) within MAX_COMPANION_BYTES.
 */
export async function assertFolderTarget(out: string, inputs: readonly string[], alsoReads: readonly string[], copy: readonly string[]): Promise<void> {
  await checkTarget(path.resolve(out), inputs, alsoReads);
  for (const file of copy) {
    const where = `in ${printable(path.basename(path.dirname(path.resolve(file))))}, copied into the output`;
    const s = await stat(file).catch((cause: unknown) => {
      throw ioError(file, `read it (${where})`, cause);
    });
    if (!s.isFile()) {
      const what = s.isDirectory() ? 'a folder' : s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : 'a device';
      throw new SafetensorsError('Io', file, `side file is not a regular file (it is ${what}; ${where})`);
    }
    if (s.size > MAX_COMPANION_BYTES) throw new SafetensorsError('Io', file, `side file is ${s.size} bytes, over the ${MAX_COMPANION_BYTES}-byte limit (${where})`);
  }
}

/** Our temporary and set-aside folders: `.<name>.<pid>.<12 hex>.tmp` / `.old`. */
const TEMP_FOLDER = /^\..*\.(\d+)\.[0-9a-f]{12}\.(tmp|old)$/;

/**
 * Removes the temporary folders that runs killed before they could clean up left in `parent`:
 * our naming, a pid that no longer runs, and only regular files inside (a `.tmp` folder holds
 * what we wrote; a `.old` one only loses the files its manifest lists). Best effort.
 */
export async function removeStaleTempFolders(parent: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_FOLDER.exec(name);
    if (!m || !processIsGone(Number(m[1]))) continue;
    const dir = path.join(parent, name);
    try {
      if (!(await lstat(dir)).isDirectory()) continue;
      const allowed = m[2] === 'old' ? await readManifest(dir) : undefined;
      if (m[2] === 'old' && !allowed) continue;
      await removeOurFiles(dir, allowed);
      removed.push(name);
    } catch {
      // not ours to remove, or gone already
    }
  }
  return removed;
}

/**
 * Removes what this process left beside `out` (its temporary file or folder): for a caller that
 * cancelled a write whose worker was stopped before it could clean up. Best effort.
 */
export async function removeOwnTemps(out: string): Promise<void> {
  const parent = path.dirname(path.resolve(out));
  const prefix = `.${path.basename(out)}.${process.pid}.`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !/\.[0-9a-f]{12}\.tmp$/.test(name)) continue;
    const p = path.join(parent, name);
    try {
      const s = await lstat(p);
      if (s.isFile()) await unlink(p);
      else if (s.isDirectory()) await removeOurFiles(p);
    } catch {
      // gone already
    }
  }
}

/** Deletes the regular files of `dir` (only those of `allowed` when given, and the manifest), then the folder if empty. */
async function removeOurFiles(dir: string, allowed?: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (allowed && name !== OUTPUT_MANIFEST && !allowed.has(name)) continue;
    const p = path.join(dir, name);
    if ((await lstat(p)).isFile()) await unlink(p);
  }
  await rmdir(dir); // fails, leaving the folder, when anything else is in it
}

/**
 * Copies a side file (config.json, tokenizer files) into the output: a regular file only (a
 * symlink counts when it leads to one), at most MAX_COMPANION_BYTES, JSON that parses when it is
 * a .json file, written with the output's own permissions. Never opens a FIFO or a device.
 */
async function copyCompanion(file: string, dest: string, out: string): Promise<void> {
  // The folder too: A's and B's side files have the same names.
  const where = `in ${printable(path.basename(path.dirname(path.resolve(file))))}, copied into the output`;
  let bytes: Buffer;
  try {
    bytes = await readBoundedFile(file, MAX_COMPANION_BYTES, 'side file');
  } catch (e) {
    if (e instanceof InputFileError && e.kind !== 'Io') throw new SafetensorsError('Io', file, `${e.detail} (${where})`, undefined, { cause: e });
    throw ioError(file, `read it (${where})`, e instanceof InputFileError && e.cause !== undefined ? e.cause : e);
  }
  if (file.toLowerCase().endsWith('.json')) {
    try {
      JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new SafetensorsError('Io', file, `side file is not valid JSON (${where})`);
    }
  }
  await writeFile(dest, bytes, { mode: 0o644, flag: 'wx' }).catch((cause: unknown) => {
    throw ioError(out, `copy ${path.basename(file)}`, cause);
  });
}

/** Best-effort removal (cleanup after a failure must not hide the failure). */
const remove = (p: string): Promise<void> => rm(p, { recursive: true, force: true }).catch(() => undefined);

/**
 * Writes a checkpoint folder at `out` (see the module comment). `out` may not exist yet, be an
 * empty folder, or be an earlier Re-Basin output holding only what its manifest lists (replaced
 * only once the new folder is complete); any other existing path is refused, and so is a folder
 * holding a file the command reads.
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
  const target = await checkTarget(out, opts.inputs ?? [], opts.alsoReads ?? []);
  const parent = path.dirname(out);
  await removeStaleTempFolders(parent);
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
    const written = [...names];
    for (const [name, text] of Object.entries(opts.files ?? {})) {
      await writeFile(path.join(tmp, name), text, { mode: 0o644, flag: 'wx' }).catch((cause: unknown) => {
        throw ioError(out, `write ${name}`, cause);
      });
      written.push(name);
    }
    for (const file of opts.copy ?? []) {
      checkAborted(signal, out);
      const name = path.basename(file);
      if (names.has(name) || written.includes(name) || name === OUTPUT_MANIFEST) continue;
      await copyCompanion(file, path.join(tmp, name), out);
      written.push(name);
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
      written.push(opts.index.file);
    }
    await writeFile(path.join(tmp, OUTPUT_MANIFEST), `${JSON.stringify({ tool: 'rebasin', files: written.sort() }, null, 2)}\n`, { mode: 0o644 }).catch((cause: unknown) => {
      throw ioError(out, `write ${OUTPUT_MANIFEST}`, cause);
    });
    checkAborted(signal, out);
    await moveIntoPlace(tmp, out, target, tag);
  } catch (error) {
    await remove(tmp);
    throw error;
  }
}

/** Renames the finished folder into place; an earlier output is moved aside first and removed after. */
async function moveIntoPlace(tmp: string, out: string, target: Target, tag: string): Promise<void> {
  const fail = (cause: unknown): never => {
    throw ioError(out, 'move the finished folder into place', cause);
  };
  if (target.kind === 'absent') {
    await rename(tmp, out).catch(fail);
    return;
  }
  if (target.kind === 'empty') {
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
  // Only the files the manifest lists: a file added since the check stays (in the set-aside folder).
  await removeOurFiles(old, target.files).catch(() => undefined);
}
