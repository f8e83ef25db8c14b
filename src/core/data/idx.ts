/**
 * MNIST's IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian magic number
 * 0x0000 | dtype code | rank, then `rank` big-endian uint32 dimensions, then the data.
 */
import { DataError } from './errors';
import type { NumericArray } from './npy';

const IDX_DTYPES: Record<number, { bytes: number; kind: 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64' }> = {
  0x08: { bytes: 1, kind: 'u8' },
  0x09: { bytes: 1, kind: 'i8' },
  0x0b: { bytes: 2, kind: 'i16' },
  0x0c: { bytes: 4, kind: 'i32' },
  0x0d: { bytes: 4, kind: 'f32' },
  0x0e: { bytes: 8, kind: 'f64' },
};

export interface IdxHeader {
  readonly dt: { bytes: number; kind: 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64' };
  readonly shape: number[];
  readonly dataStart: number;
  /** Whole file size the header declares. */
  readonly need: number;
}

/** The header from the first bytes of an IDX file; undefined when they are too few to hold it. */
export function readIdxHeader(bytes: Uint8Array, file: string): IdxHeader | undefined {
  if (bytes.length < 4) return undefined;
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError('BadMagic', `${file}: not an idx file (magic number must start with two zero bytes)`, file);
  }
  const dt = IDX_DTYPES[bytes[2]];
  if (!dt) throw new DataError('BadMagic', `${file}: unknown idx dtype code 0x${bytes[2].toString(16)}`, file);
  const rank = bytes[3];
  if (rank < 1) throw new DataError('BadShape', `${file}: idx rank must be at least 1`, file);
  const dataStart = 4 + 4 * rank;
  if (bytes.length < dataStart) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  return { dt, shape, dataStart, need: dataStart + count * dt.bytes };
}

/** Parses one IDX file's bytes (already gunzipped). `file` only names it in errors. */
export function parseIdx(bytes: Uint8Array, file: string): NumericArray {
  if (bytes.length < 4) throw new DataError('BadMagic', `${file}: not an idx file (${bytes.length} bytes)`, file);
  const header = readIdxHeader(bytes, file);
  if (!header) throw new DataError('Corrupt', `${file}: idx header truncated`, file);
  const { dt, shape, dataStart, need } = header;
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== need) {
    throw new DataError('Corrupt', `${file}: idx header promises ${need} bytes for shape [${shape.join(', ')}], file has ${bytes.length}`, file);
  }
  const body = bytes.subarray(dataStart);
  if (dt.kind === 'u8') return { shape, dtype: 'uint8', data: Uint8Array.from(body) };
  if (dt.kind === 'i8') return { shape, dtype: 'int', data: Int32Array.from(new Int8Array(body.buffer, body.byteOffset, count)) };
  // Multi-byte IDX values are big-endian.
  const out = dt.kind === 'f32' || dt.kind === 'f64' ? new Float32Array(count) : new Int32Array(count);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < count; i++) {
    if (dt.kind === 'i16') out[i] = dv.getInt16(2 * i, false);
    else if (dt.kind === 'i32') out[i] = dv.getInt32(4 * i, false);
    else if (dt.kind === 'f32') out[i] = dv.getFloat32(4 * i, false);
    else out[i] = dv.getFloat64(8 * i, false);
  }
  return out instanceof Float32Array ? { shape, dtype: 'float', data: out } : { shape, dtype: 'int', data: out };
}
