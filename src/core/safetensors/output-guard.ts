import { realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SafetensorsError, printable } from './errors';
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
 * the same file through a symlink or a hard link (same device and inode).
 */
export async function assertNotAnInput(outPath: string, inputs: readonly string[]): Promise<void> {
  const out = await identify(outPath);
  if (!out) return;
  for (const input of inputs) {
    for (const file of await filesOf(input)) {
      const id = await identify(file);
      if (id && (id.real === out.real || (id.dev === out.dev && id.ino === out.ino))) {
        const via = path.resolve(file) === path.resolve(outPath) ? '' : ` (\`${printable(path.basename(file))}\`)`;
        throw new SafetensorsError('OutputIsInput', outPath, `refusing to write over an input${via}: choose another output path`);
      }
    }
  }
}
