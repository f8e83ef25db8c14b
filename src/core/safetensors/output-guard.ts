import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SafetensorsError, ioError, printable } from './errors';
import { isShardIndexPath, readShardIndex } from './sharded';

interface FileIdentity {
  readonly real: string;
  readonly dev: number;
  readonly ino: number;
}

async function identify(p: string): Promise<FileIdentity | undefined> {
  try {
    const s = await stat(p); // follows symlinks: a link to an input is that input
    return { real: await realpath(p), dev: s.dev, ino: s.ino };
  } catch {
    return undefined; // does not exist (or cannot be seen): nothing there to overwrite
  }
}

/** The files an input stands for: itself, plus every shard when it is a sharded index. */
async function filesOf(input: string): Promise<string[]> {
  if (!isShardIndexPath(input)) return [input];
  try {
    return [input, ...(await readShardIndex(input)).shards];
  } catch {
    return [input];
  }
}

/**
 * Refuses an output path that is one of the inputs or one of their shards: same real path, or
 * the same file through a symlink or a hard link (same device and inode). `alsoReads` are other
 * files the command reads (spec, model config, data), compared as plain files.
 */
export async function assertNotAnInput(outPath: string, inputs: readonly string[], alsoReads: readonly string[] = []): Promise<void> {
  const out = await identify(outPath);
  if (!out) return;
  const groups = [...(await Promise.all(inputs.map(filesOf))), ...alsoReads.map((f) => [f])];
  for (const files of groups) {
    for (const file of files) {
      const id = await identify(file);
      if (id && (id.real === out.real || (id.dev === out.dev && id.ino === out.ino))) {
        const via = path.resolve(file) === path.resolve(outPath) ? '' : ` (\`${printable(path.basename(file))}\`)`;
        throw new SafetensorsError('OutputIsInput', outPath, `refusing to write over an input${via}: choose another output path`);
      }
    }
  }
}

/** The longest file name most file systems accept (NAME_MAX), in bytes. */
export const NAME_MAX_BYTES = 255;

/** Refuses an output that exists but is not a regular file (a folder, FIFO, device: rename would replace it). */
export async function assertOutputIsRegularOrAbsent(outPath: string): Promise<void> {
  let s;
  try {
    s = await stat(outPath);
  } catch {
    return;
  }
  if (!s.isFile()) {
    const what = s.isDirectory() ? 'a folder' : s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : 'a device';
    throw new SafetensorsError('Io', outPath, `output exists and is not a regular file (it is ${what}): choose another output path`);
  }
}

/**
 * Everything about an output path that can be known before any work: it is not a file the
 * command reads, not an existing folder/FIFO/device, its name fits the file system, and its
 * folder exists and is writable. Handlers call it first, so a bad `--out` fails in
 * milliseconds rather than after the computation.
 */
export async function assertOutputTarget(outPath: string, inputs: readonly string[], alsoReads: readonly string[] = [], opts: { readonly folder?: boolean } = {}): Promise<void> {
  const name = path.basename(outPath);
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX_BYTES) {
    throw new SafetensorsError('Io', outPath, `output file name is longer than ${NAME_MAX_BYTES} bytes`);
  }
  // A folder output (Hugging Face layout) may be an existing folder: its writer decides which.
  if (!opts.folder) await assertOutputIsRegularOrAbsent(outPath);
  await assertNotAnInput(outPath, inputs, alsoReads);
  const dir = path.dirname(path.resolve(outPath));
  let d;
  try {
    d = await stat(dir);
  } catch (cause) {
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : '';
    if (code === 'ENOENT') throw new SafetensorsError('Io', outPath, `output folder ${printable(dir, 160)} does not exist`);
    throw ioError(outPath, `use output folder ${printable(dir, 160)}`, cause);
  }
  if (!d.isDirectory()) throw new SafetensorsError('Io', outPath, `output folder ${printable(dir, 160)} is not a folder`);
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new SafetensorsError('Io', outPath, `output folder ${printable(dir, 160)} is not writable`);
  }
}
