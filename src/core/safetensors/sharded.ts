import { realpath, stat } from 'node:fs/promises';
import { readBoundedFile } from '../files';
import * as path from 'node:path';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { findDuplicateKey } from './duplicate-keys';
import { compareNames } from './names';
import { SafetensorsError, fromInputFileError, printable, tensorLabel } from './errors';
import { MAX_HEADER_BYTES } from './header';
import { openSafetensors } from './reader';

/** A parsed `model.safetensors.index.json`. */
export interface ShardIndex {
  /** Tensor name -> absolute shard path. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Absolute shard paths, sorted, each once. */
  readonly shards: readonly string[];
  /** `metadata` of the index (e.g. total_size): informational only. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `p` names a sharded index (`*.safetensors.index.json`, or any `.json`). */
export function isShardIndexPath(p: string): boolean {
  return p.toLowerCase().endsWith('.json');
}

/**
 * Reads and checks a sharded index: a JSON object whose `weight_map` maps tensor names to shard
 * file names in the index's own folder (a name reaching outside it is refused).
 */
export async function readShardIndex(indexPath: string): Promise<ShardIndex> {
  let bytes: Uint8Array;
  try {
    bytes = await readBoundedFile(indexPath, MAX_HEADER_BYTES, 'index');
  } catch (error) {
    throw fromInputFileError(error, indexPath, 'open index');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new SafetensorsError('InvalidUtf8', indexPath, 'index is not valid utf-8', undefined, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new SafetensorsError('InvalidJson', indexPath, 'index is not valid json', undefined, { cause });
  }
  if (!isPlainObject(json)) throw new SafetensorsError('InvalidIndex', indexPath, 'index json is not an object');
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    throw new SafetensorsError('DuplicateKey', indexPath, `key \`${printable(duplicate.key)}\` appears twice in the index`, duplicate.key);
  }
  const map = json.weight_map;
  if (!isPlainObject(map)) throw new SafetensorsError('InvalidIndex', indexPath, 'index has no `weight_map` object');
  const dir = path.dirname(path.resolve(indexPath));
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new SafetensorsError('InvalidIndex', indexPath, `weight_map entry for ${tensorLabel(tensor)} is not a file name`, tensor);
    }
    const resolved = path.resolve(dir, shard);
    const relative = path.relative(dir, resolved);
    // `..s1.safetensors` is a legal name; `..` or `../x` leaves the folder.
    if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
      throw new SafetensorsError('InvalidIndex', indexPath, `shard \`${printable(shard)}\` of ${tensorLabel(tensor)} is outside the index's folder`, tensor);
    }
    weightMap.set(tensor, resolved);
  }
  const metadata = isPlainObject(json.metadata) ? json.metadata : {};
  return { weightMap, shards: [...new Set(weightMap.values())].sort(), metadata };
}

/** A shard reached through a symlink must still resolve inside the index's (real) folder. */
async function assertInsideFolder(indexPath: string, shard: string): Promise<void> {
  const dir = await realpath(path.dirname(path.resolve(indexPath)));
  const real = await realpath(shard);
  const relative = path.relative(dir, real);
  if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
    throw new SafetensorsError('InvalidIndex', indexPath, `shard \`${printable(path.basename(shard))}\` is a link to a file outside the index's folder`);
  }
}

class ShardedCheckpoint implements Checkpoint {
  readonly format = 'sharded' as const;
  private readonly owner: ReadonlyMap<string, Checkpoint>;

  constructor(
    readonly path: string,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: readonly TensorInfo[],
    owner: ReadonlyMap<string, Checkpoint>,
    private readonly shards: readonly Checkpoint[],
  ) {
    this.owner = owner;
    if (shards.every((s) => s.readRawRange)) this.readRawRange = (name, begin, end) => this.shardOf(name).readRawRange!(name, begin, end);
    if (shards.every((s) => s.readRawSync)) this.readRawSync = (name) => this.shardOf(name).readRawSync!(name);
  }

  get(name: string): TensorInfo | undefined {
    return this.owner.get(name)?.get(name);
  }

  private shardOf(name: string): Checkpoint {
    const shard = this.owner.get(name);
    if (!shard) throw new SafetensorsError('TensorNotFound', this.path, `${tensorLabel(name)} not found`, name);
    return shard;
  }

  readRaw(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readRaw(name);
  }

  /** Present when every shard reads byte ranges (safetensors shards do; other formats may not). */
  readonly readRawRange?: (name: string, begin: number, end: number) => Promise<Uint8Array>;

  /** Present when every shard reads synchronously (safetensors shards do). */
  readonly readRawSync?: (name: string) => Uint8Array;

  readFloat32(name: string): Promise<Float32Array> {
    return this.shardOf(name).readFloat32(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

/**
 * Opens a sharded checkpoint through its index as one Checkpoint. Every shard is validated like a
 * single file; a missing shard, a tensor present in two shards, and a tensor the map places in a
 * shard that lacks it are errors naming them. Tensors of a shard that the map omits are kept.
 * `openShard` opens one shard (src/core/formats passes its own, so PyTorch shards open too).
 */
export async function openShardedCheckpoint(indexPath: string, openShard: (file: string) => Promise<Checkpoint> = openSafetensors): Promise<Checkpoint> {
  const index = await readShardIndex(indexPath);
  const opened: Checkpoint[] = [];
  try {
    for (const shard of index.shards) {
      try {
        await stat(shard);
      } catch {
        const example = [...index.weightMap].find(([, s]) => s === shard)?.[0] ?? '';
        throw new SafetensorsError(
          'MissingShard',
          indexPath,
          `shard \`${printable(path.basename(shard))}\` (holding ${tensorLabel(example)}) does not exist`,
          example,
        );
      }
      await assertInsideFolder(indexPath, shard);
      opened.push(await openShard(shard));
    }
    const owner = new Map<string, Checkpoint>();
    for (const shard of opened) {
      for (const t of shard.tensors) {
        const first = owner.get(t.name);
        if (first) {
          throw new SafetensorsError(
            'DuplicateTensor',
            indexPath,
            `${tensorLabel(t.name)} is in two shards: \`${printable(path.basename(first.path))}\` and \`${printable(path.basename(shard.path))}\``,
            t.name,
          );
        }
        owner.set(t.name, shard);
      }
    }
    for (const [tensor, shardPath] of index.weightMap) {
      if (owner.get(tensor)?.path !== shardPath) {
        const actual = owner.get(tensor);
        const where = actual ? ` (it is in \`${printable(path.basename(actual.path))}\`)` : '';
        throw new SafetensorsError(
          'TensorNotFound',
          indexPath,
          `${tensorLabel(tensor)} is mapped to \`${printable(path.basename(shardPath))}\` but that shard does not hold it${where}`,
          tensor,
        );
      }
    }
    const tensors = opened
      .flatMap((s) => s.tensors)
      .sort((a, b) => compareNames(a.name, b.name));
    const metadata = opened[0]?.metadata ?? {};
    return new ShardedCheckpoint(indexPath, metadata, tensors, owner, opened);
  } catch (error) {
    await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
    throw error;
  }
}
