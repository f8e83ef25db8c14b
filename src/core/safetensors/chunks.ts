/**
 * A tensor's values, chunk by chunk: positioned reads of at most `chunkElements` elements
 * (readRawRange), each decoded on its own, so whole-checkpoint passes (diff, scan) hold one chunk
 * per input whatever the tensor's size. F64 and the 64-bit integers decode to float64 (exact up
 * to 2^53); every other decodable dtype to float32 (exact for F16, BF16, F8, 8/16-bit integers).
 */
import type { Checkpoint } from '../checkpoint';
import { decodeToFloat32, DECODABLE_DTYPES } from './codec';
import { DTYPE_BITS } from './dtypes';
import { SafetensorsError } from './errors';

export type TensorValues = Float32Array | Float64Array;

/** Elements per chunk: 8 MiB of float64 at most, a cancellation check and a progress step each. */
export const CHUNK_ELEMENTS = 1 << 20;

/** True when `dtype`'s values can be read as numbers (F4, F6 and C64 cannot). */
export function isNumericDtype(dtype: string): boolean {
  return DECODABLE_DTYPES.includes(dtype);
}

/** Little-endian bytes of `dtype` (whole elements, byteOffset a multiple of 8) as numbers. */
export function decodeValues(dtype: string, bytes: Uint8Array, file = 'tensor', tensor?: string): TensorValues {
  if (dtype !== 'F64' && dtype !== 'I64' && dtype !== 'U64') return decodeToFloat32(dtype, bytes, file, tensor);
  const own = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const n = Math.floor(own.length / 8);
  if (dtype === 'F64') return new Float64Array(own.buffer, own.byteOffset, n);
  const wide = dtype === 'U64' ? new BigUint64Array(own.buffer, own.byteOffset, n) : new BigInt64Array(own.buffer, own.byteOffset, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Number(wide[i]);
  return out;
}

function elementBytes(ck: Checkpoint, name: string, dtype: string): number {
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined || bits % 8 !== 0 || !isNumericDtype(dtype)) {
    throw new SafetensorsError('UnsupportedDtype', ck.path, `tensor \`${name}\` has dtype ${dtype}, whose values cannot be read as numbers`, name);
  }
  return bits / 8;
}

/** Decoded chunks of raw bytes already in memory (π(B)'s permuted bytes). */
export function* bytesValueChunks(raw: Uint8Array, dtype: string, width: number, chunkElements = CHUNK_ELEMENTS): Generator<TensorValues> {
  const step = chunkElements * width;
  for (let at = 0; at < raw.length; at += step) yield decodeValues(dtype, raw.subarray(at, Math.min(raw.length, at + step)));
}

/**
 * The tensor's values in order, at most `chunkElements` at a time. A checkpoint without
 * `readRawRange` is read whole (one tensor at a time) and decoded chunk by chunk.
 */
export async function* tensorValueChunks(ck: Checkpoint, name: string, chunkElements = CHUNK_ELEMENTS): AsyncGenerator<TensorValues> {
  const info = ck.get(name);
  if (!info) throw new SafetensorsError('TensorNotFound', ck.path, `tensor \`${name}\` not found`, name);
  const width = elementBytes(ck, name, info.dtype);
  if (!ck.readRawRange) {
    yield* bytesValueChunks(await ck.readRaw(name), info.dtype, width, chunkElements);
    return;
  }
  const step = chunkElements * width;
  for (let at = 0; at < info.byteLength; at += step) {
    const bytes = await ck.readRawRange(name, at, Math.min(info.byteLength, at + step));
    yield decodeValues(info.dtype, bytes, ck.path, name);
  }
}

/** Bytes per element of a readable dtype (refusing F4, F6, C64 naming the tensor). */
export function readableElementBytes(ck: Checkpoint, name: string): number {
  const info = ck.get(name);
  if (!info) throw new SafetensorsError('TensorNotFound', ck.path, `tensor \`${name}\` not found`, name);
  return elementBytes(ck, name, info.dtype);
}
