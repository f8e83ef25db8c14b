/**
 * NumPy's `.npy` format (numpy/lib/format.py, versions 1-3): magic "\x93NUMPY", version,
 * a little- or big-endian header length, a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (n, 28, 28), }`, then the raw array.
 */
import { DataError } from './errors';

/** An array as read from a data file: uint8 images keep their bytes so they can be scaled to [0, 1]. */
export type NumericArray =
  | { readonly shape: number[]; readonly dtype: 'uint8'; readonly data: Uint8Array }
  | { readonly shape: number[]; readonly dtype: 'int'; readonly data: Int32Array }
  | { readonly shape: number[]; readonly dtype: 'float'; readonly data: Float32Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** An npy header (dict) longer than this is not one numpy writes. */
export const MAX_NPY_HEADER = 1 << 20;

export interface NpyHeader {
  readonly kind: string;
  readonly size: number;
  readonly little: boolean;
  readonly descr: string;
  readonly shape: number[];
  readonly dataStart: number;
  /** Whole file size the header declares. */
  readonly need: number;
}

/** The header from the first bytes of an npy file; undefined when they are too few to hold it. */
export function readNpyHeader(bytes: Uint8Array, file: string): NpyHeader | undefined {
  if (bytes.length < 10) return undefined;
  if (MAGIC.some((m, i) => bytes[i] !== m)) throw new DataError('BadMagic', `${file}: not an npy file (missing \\x93NUMPY magic)`, file);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) return undefined;
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new DataError('Unsupported', `${file}: npy format version ${major} is not supported`, file);
  }
  if (headerLen > MAX_NPY_HEADER) throw new DataError('Corrupt', `${file}: npy header claims ${headerLen} bytes (damaged file?)`, file);
  const dataStart = headerStart + headerLen;
  if (bytes.length < dataStart) return undefined;
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new DataError('BadShape', `${file}: npy header lacks descr, fortran_order or shape`, file);
  }
  if (fortran === 'True') throw new DataError('Unsupported', `${file}: fortran-ordered npy arrays are not supported (save with np.ascontiguousarray)`, file);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new DataError('BadShape', `${file}: npy shape (${shapeText}) is not a tuple of sizes`, file);
  const count = shape.reduce((a, b) => a * b, 1);
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  if (!m) throw new DataError('Unsupported', `${file}: npy dtype '${descr}' is not supported`, file);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  return { kind, size, little: order !== '>', descr, shape, dataStart, need: dataStart + count * size };
}

export function parseNpy(bytes: Uint8Array, file: string): NumericArray {
  const header = readNpyHeader(bytes, file);
  if (!header) {
    if (bytes.length < 10) throw new DataError('BadMagic', `${file}: not an npy file (missing \\x93NUMPY magic)`, file);
    throw new DataError('Corrupt', `${file}: npy header truncated`, file);
  }
  const { kind, size, little, descr, shape, dataStart } = header;
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - dataStart !== count * size) {
    throw new DataError('Corrupt', `${file}: npy data holds ${bytes.length - dataStart} bytes, shape [${shape.join(', ')}] of '${descr}' needs ${count * size}`, file);
  }
  const body = bytes.subarray(dataStart);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (kind === 'u' && size === 1) return { shape, dtype: 'uint8', data: Uint8Array.from(body) };
  if (kind === 'b' && size === 1) return { shape, dtype: 'int', data: Int32Array.from(body) };
  if (kind === 'f') {
    const out = new Float32Array(count);
    if (size === 4) for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, little);
    else if (size === 8) for (let i = 0; i < count; i++) out[i] = dv.getFloat64(8 * i, little);
    else if (size === 2) for (let i = 0; i < count; i++) out[i] = halfToFloat(dv.getUint16(2 * i, little));
    else throw new DataError('Unsupported', `${file}: npy dtype '${descr}' is not supported`, file);
    return { shape, dtype: 'float', data: out };
  }
  if ((kind === 'i' && size === 8) || (kind === 'u' && size >= 4)) {
    // Values beyond int32 must not wrap (2^32 + 1 would read as 1): read through float64 into float32,
    // which keeps every integer a label can be exactly and keeps huge ones huge.
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      if (size === 4) out[i] = dv.getUint32(4 * i, little);
      else if (size === 8) out[i] = Number(kind === 'i' ? dv.getBigInt64(8 * i, little) : dv.getBigUint64(8 * i, little));
      else throw new DataError('Unsupported', `${file}: npy dtype '${descr}' is not supported`, file);
    }
    return { shape, dtype: 'float', data: out };
  }
  if (kind === 'i' || kind === 'u') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      let v: number;
      if (size === 1) v = kind === 'i' ? dv.getInt8(i) : dv.getUint8(i);
      else if (size === 2) v = kind === 'i' ? dv.getInt16(2 * i, little) : dv.getUint16(2 * i, little);
      else if (size === 4) v = kind === 'i' ? dv.getInt32(4 * i, little) : dv.getUint32(4 * i, little);
      else if (size === 8) v = Number(kind === 'i' ? dv.getBigInt64(8 * i, little) : dv.getBigUint64(8 * i, little));
      else throw new DataError('Unsupported', `${file}: npy dtype '${descr}' is not supported`, file);
      out[i] = v;
    }
    return { shape, dtype: 'int', data: out };
  }
  throw new DataError('Unsupported', `${file}: npy dtype '${descr}' is not supported`, file);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
