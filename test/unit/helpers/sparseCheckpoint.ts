/**
 * A sparse 10 GiB safetensors file for "header only" tests and benches: a real header and a
 * small tensor's bytes, then ftruncate to the full size, so the big tensor's data is a hole
 * (no disk, no memory). Shared by the unit test, the inspect bench and the extension suite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeFromFloat32 } from '../../../src/core/safetensors';

/** F32 [40960, 65536] = 10 GiB of data a reader must never touch. */
export const BIG_SHAPE: readonly number[] = [40960, 65536];
export const BIG_BYTES = BIG_SHAPE[0] * BIG_SHAPE[1] * 4;
/** The small tensor stored first (data offsets [0, 16]). */
export const SMALL = Float32Array.of(1.5, -2, 3.25, 4);

/** Writes the file (creating its folder) and returns its size in bytes. */
export function writeSparseCheckpoint(file: string, metadata: Record<string, string> = { format: 'pt' }): number {
  const header = JSON.stringify({
    __metadata__: metadata,
    big: { dtype: 'F32', shape: BIG_SHAPE, data_offsets: [16, 16 + BIG_BYTES] },
    small: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
  });
  const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  const size = 8 + padded.length + 16 + BIG_BYTES;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, Buffer.concat([prefix, Buffer.from(padded), encodeFromFloat32('F32', SMALL)]));
    fs.ftruncateSync(fd, size);
  } finally {
    fs.closeSync(fd);
  }
  return size;
}
