/**
 * One way in for every checkpoint format: the format is told by the file's first bytes, not its
 * name (a `.bin` may be a zip or a legacy pickle; `checkpoint_100` has no extension at all):
 * a length prefix then `{` is safetensors, `PK\x03\x04` a PyTorch zip, `\x80` + protocol 2-5 a
 * legacy `torch.save` pickle, a msgpack map a Flax checkpoint, anything else safetensors (whose
 * reader explains what is wrong). A `.json` is a shard index whose shards are opened the same way.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Checkpoint } from '../checkpoint';
import { openRegularFile } from '../files';
import { fromInputFileError } from '../safetensors/errors';
import { readFully } from '../safetensors/file-io';
import { openSafetensors } from '../safetensors/reader';
import { isShardIndexPath, openShardedCheckpoint } from '../safetensors/sharded';
import { openFlax } from './flaxFile';
import { openTorchLegacy, openTorchZip } from './torchFile';

export type DetectedFormat = 'safetensors' | 'pytorch-zip' | 'pytorch-legacy' | 'flax';

/**
 * The format the first bytes of a file say it has (`safetensors` when nothing else fits).
 * Safetensors is checked first: its 8-byte length prefix can begin with any byte (a header of
 * 0x280 bytes starts `80 02`, like a pickle), but its header then opens with `{` at byte 8.
 */
export function detectFormat(head: Uint8Array): DetectedFormat {
  if (head.length >= 9 && head[8] === 0x7b && head[6] === 0 && head[7] === 0) return 'safetensors';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'pytorch-zip';
  if (head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'pytorch-legacy';
  // A msgpack map (fixmap with entries, map16, map32) whose first key is a string.
  const b = head[0];
  const keyAt = b >= 0x81 && b <= 0x8f ? 1 : b === 0xde ? 3 : b === 0xdf ? 5 : -1;
  const k = keyAt >= 0 && head.length > keyAt ? head[keyAt] : -1;
  if (k >= 0 && ((k >= 0xa0 && k <= 0xbf) || k === 0xd9 || k === 0xda || k === 0xdb)) return 'flax';
  return 'safetensors';
}

/** Detects the format of a file by content (reads 16 bytes). */
export async function detectFileFormat(file: string): Promise<DetectedFormat> {
  const { handle, size } = await openRegularFile(file, 'checkpoint');
  try {
    return detectFormat(await head(handle, size, file));
  } finally {
    await handle.close();
  }
}

async function head(handle: FileHandle, size: number, file: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(Math.min(16, size));
  await readFully(handle, bytes, 0, file);
  return bytes;
}

/** Opens one weights file of any supported format. */
export async function openCheckpointFile(file: string): Promise<Checkpoint> {
  let opened: { handle: FileHandle; size: number };
  try {
    opened = await openRegularFile(file, 'checkpoint');
  } catch (error) {
    throw fromInputFileError(error, file, 'open file');
  }
  const { handle, size } = opened;
  let format: DetectedFormat;
  try {
    format = detectFormat(await head(handle, size, file));
    if (format === 'safetensors') await handle.close();
    else if (format === 'pytorch-zip') return await openTorchZip(file, handle, size);
    else if (format === 'pytorch-legacy') return await openTorchLegacy(file, handle, size);
    else return openFlax(file, handle, size);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  return openSafetensors(file);
}

/** Opens a weights file of any supported format, or a sharded checkpoint through its index JSON. */
export function openCheckpoint(path: string): Promise<Checkpoint> {
  return isShardIndexPath(path) ? openShardedCheckpoint(path, openCheckpointFile) : openCheckpointFile(path);
}
