/**
 * Decompression capped by what the data says it holds: the IDX or npy header at the start of
 * the decompressed stream declares the array's size, so a small compressed file that inflates
 * to gigabytes (a "zip bomb") is refused as soon as it goes past that, in milliseconds and
 * without holding the excess.
 */
import * as zlib from 'node:zlib';
import { DataError } from './errors';

export type Compression = 'gzip' | 'deflate-raw';

/** From the first decompressed bytes: the whole stream's size, or undefined when more bytes are needed (throws on a bad header). */
export type DeclaredSize = (head: Uint8Array) => number | undefined;

/** Deflate cannot compress better than about 1032:1; a declared size beyond that is a lie. */
const MAX_RATIO = 1032;
const HEAD_LIMIT = 1 << 20;

function inflate(kind: Compression, input: Uint8Array, options: zlib.ZlibOptions): Buffer {
  return kind === 'gzip' ? zlib.gunzipSync(input, options) : zlib.inflateRawSync(input, options);
}

/** The first bytes of the stream, decompressing only a prefix of the input (a truncated prefix is fine). */
function head(kind: Compression, input: Uint8Array, compressedBytes: number): Buffer {
  try {
    return inflate(kind, input.subarray(0, compressedBytes), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: HEAD_LIMIT * 2 });
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * Decompresses `input`, refusing output beyond the size its header declares (or `maxBytes`).
 * `what` names the entry in messages ("gzip data", "zip entry `x.npy`").
 */
export function inflateBounded(kind: Compression, input: Uint8Array, declared: DeclaredSize, maxBytes: number, file: string, what: string): Uint8Array {
  let size: number | undefined;
  for (let n = 64; size === undefined; n *= 8) {
    const prefix = head(kind, input, n);
    size = declared(prefix);
    if (size === undefined && (n >= input.length || prefix.length >= HEAD_LIMIT)) {
      const whole = inflateWhole(kind, input, HEAD_LIMIT, file, what);
      size = declared(whole);
      if (size === undefined) return whole; // too short to hold a header: the parser says so
    }
  }
  if (size > maxBytes) throw new DataError('Unsupported', `${file}: ${what} declares ${size} bytes, over the ${maxBytes}-byte limit`, file);
  if (size > input.length * MAX_RATIO + 4096) {
    throw new DataError('Corrupt', `${file}: ${what} declares ${size} bytes, more than its ${input.length} compressed bytes can hold`, file);
  }
  return inflateWhole(kind, input, size, file, what);
}

function inflateWhole(kind: Compression, input: Uint8Array, limit: number, file: string, what: string): Uint8Array {
  try {
    // maxOutputLength stops inflating as soon as the output passes the limit.
    return new Uint8Array(inflate(kind, input, { maxOutputLength: Math.max(1, limit) }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError('Corrupt', `${file}: ${what} decompresses to more than the ${limit} bytes its header declares (a decompression bomb?)`, file);
    }
    throw new DataError('Corrupt', `${file}: ${what} is damaged (${(e as Error).message.split('\n')[0]})`, file);
  }
}
