/**
 * Decompression capped by what the data says it holds: the IDX or npy header at the start of
 * the decompressed stream declares the array's size, which is read from a small prefix first
 * (so images and labels can be checked against each other, and the size against the memory
 * budget, before anything large is inflated); the stream is then inflated into one buffer of
 * exactly that size, and refused as soon as it goes past it (a "zip bomb"), without holding
 * the excess.
 */
import * as zlib from 'node:zlib';
import { DataError } from './errors';

export type Compression = 'gzip' | 'deflate-raw';

/** From the first decompressed bytes: the whole stream's size, or undefined when more bytes are needed (throws on a bad header). */
export type DeclaredSize = (head: Uint8Array) => number | undefined;

/** Deflate cannot compress better than about 1032:1; a declared size beyond that is a lie. */
const MAX_RATIO = 1032;
const HEAD_LIMIT = 1 << 20;

function inflateSync(kind: Compression, input: Uint8Array, options: zlib.ZlibOptions): Buffer {
  return kind === 'gzip' ? zlib.gunzipSync(input, options) : zlib.inflateRawSync(input, options);
}

/** The first bytes of the stream, decompressing only a prefix of the input (a truncated prefix is fine). */
function head(kind: Compression, input: Uint8Array, compressedBytes: number): Buffer {
  try {
    return inflateSync(kind, input.subarray(0, compressedBytes), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: HEAD_LIMIT * 2 });
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * The size the stream's header declares, inflating only a prefix; undefined when the whole
 * stream is too short to hold a header (the parser then says what is wrong). Refuses a size
 * over `maxBytes` or beyond what the compressed bytes can hold. `what` names the entry in
 * messages ("gzip data", "zip entry `x.npy`").
 */
export function declaredSize(kind: Compression, input: Uint8Array, declared: DeclaredSize, maxBytes: number, file: string, what: string): number | undefined {
  let size: number | undefined;
  for (let n = 64; size === undefined; n *= 8) {
    const prefix = head(kind, input, n);
    size = declared(prefix);
    if (size === undefined && (n >= input.length || prefix.length >= HEAD_LIMIT)) {
      size = declared(inflateWhole(kind, input, HEAD_LIMIT, file, what));
      if (size === undefined) return undefined;
    }
  }
  if (size > maxBytes) throw new DataError('Unsupported', `${file}: ${what} declares ${size} bytes, over the ${maxBytes}-byte limit`, file);
  if (size > input.length * MAX_RATIO + 4096) {
    throw new DataError('Corrupt', `${file}: ${what} declares ${size} bytes, more than its ${input.length} compressed bytes can hold`, file);
  }
  return size;
}

/** Decompresses `input`, refusing output beyond the size its header declares (or `maxBytes`). */
export async function inflateBounded(kind: Compression, input: Uint8Array, declared: DeclaredSize, maxBytes: number, file: string, what: string): Promise<Uint8Array> {
  const size = declaredSize(kind, input, declared, maxBytes, file, what);
  return size === undefined ? inflateWhole(kind, input, HEAD_LIMIT, file, what) : inflateCapped(kind, input, size, file, what);
}

function bomb(file: string, what: string, limit: number): DataError {
  return new DataError('Corrupt', `${file}: ${what} decompresses to more than the ${limit} bytes its header declares (a decompression bomb?)`, file);
}

function damaged(file: string, what: string, e: unknown): DataError {
  return new DataError('Corrupt', `${file}: ${what} is damaged (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`, file);
}

/** A small stream whole (headers too short to parse). */
function inflateWhole(kind: Compression, input: Uint8Array, limit: number, file: string, what: string): Uint8Array {
  try {
    return new Uint8Array(inflateSync(kind, input, { maxOutputLength: Math.max(1, limit) }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw bomb(file, what, limit);
    throw damaged(file, what, e);
  }
}

/**
 * Streams `input` through the inflater into one buffer of `cap` bytes: the process never holds
 * more than the declared size plus one chunk, and stops at the first byte beyond it. Returns
 * what the stream held (fewer bytes than `cap` when it ends early; the parser refuses that).
 */
export function inflateCapped(kind: Compression, input: Uint8Array, cap: number, file: string, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(cap);
  let filled = 0;
  const z = kind === 'gzip' ? zlib.createGunzip() : zlib.createInflateRaw();
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (e: DataError): void => {
      if (failed) return;
      failed = true;
      z.destroy();
      reject(e);
    };
    z.on('data', (chunk: Buffer) => {
      if (filled + chunk.length > cap) return fail(bomb(file, what, cap));
      out.set(chunk, filled);
      filled += chunk.length;
    });
    z.on('error', (e) => fail(damaged(file, what, e)));
    z.on('end', () => {
      if (!failed) resolve(filled === cap ? out : out.subarray(0, filled));
    });
    z.end(input);
  });
}
