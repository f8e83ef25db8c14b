import { SafetensorsError } from './errors';
import {
  byteTable,
  e4m3fnToFloat,
  e5m2ToFloat,
  e8m0ToFloat,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfTableFloat32,
} from './float-formats';

/** safetensors data is little-endian; typed arrays use the host's order (little-endian on every Node target we ship). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Dtypes `decodeToFloat32` can convert. */
export const DECODABLE_DTYPES: readonly string[] = Object.freeze([
  'BOOL', 'U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'U64', 'I64',
  'F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0',
]);
/** Dtypes `encodeFromFloat32` can write. */
export const ENCODABLE_DTYPES: readonly string[] = Object.freeze(['F32', 'F64', 'F16', 'BF16']);

const ELEMENT_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;
let e8m0Table: Float32Array | undefined;

/**
 * Returns little-endian bytes whose byteOffset is a multiple of `elementBytes`, so typed arrays
 * can view them. Node Buffers are often slices of a shared pool at odd offsets: those are copied.
 */
function alignedLittleEndian(bytes: Uint8Array, elementBytes: number): Uint8Array {
  if (HOST_LITTLE_ENDIAN && bytes.byteOffset % elementBytes === 0) return bytes;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (!HOST_LITTLE_ENDIAN) swapBytes(copy, elementBytes);
  return copy;
}

function swapBytes(bytes: Uint8Array, elementBytes: number): void {
  if (elementBytes === 1) return;
  for (let i = 0; i < bytes.length; i += elementBytes) bytes.subarray(i, i + elementBytes).reverse();
}

function lookup(bytes: Uint8Array, table: Float32Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]];
  return out;
}

/** 16-bit tensor bytes (F16, BF16) as their little-endian bit patterns (a view when aligned on a little-endian host). */
export function halfBits(bytes: Uint8Array, file = 'tensor', tensor?: string): Uint16Array {
  if (bytes.length % 2 !== 0) throw new SafetensorsError('InvalidTensorInfo', file, `${bytes.length} bytes are not a whole number of 16-bit elements`, tensor);
  const le = alignedLittleEndian(bytes, 2);
  return new Uint16Array(le.buffer, le.byteOffset, bytes.length / 2);
}

/**
 * Decodes little-endian tensor bytes of `dtype` to float32: F16, BF16 and the FP8 formats exactly,
 * F64 rounded to nearest, integers converted (64-bit ones through Number), BOOL as 0/1.
 * F32 input that is already aligned is viewed, not copied: the result then shares `bytes`' memory.
 */
export function decodeToFloat32(dtype: string, bytes: Uint8Array, file = 'tensor', tensor?: string): Float32Array {
  const size = ELEMENT_BYTES[dtype];
  if (size === undefined) {
    throw new SafetensorsError('UnsupportedDtype', file, `dtype ${dtype} cannot be decoded to float32 (read its raw bytes)`, tensor);
  }
  if (bytes.length % size !== 0) {
    throw new SafetensorsError('InvalidTensorInfo', file, `${bytes.length} bytes are not a whole number of ${dtype} elements`, tensor);
  }
  const n = bytes.length / size;
  const le = alignedLittleEndian(bytes, size);
  switch (dtype) {
    case 'F32':
      return new Float32Array(le.buffer, le.byteOffset, n);
    case 'F64':
      return new Float32Array(new Float64Array(le.buffer, le.byteOffset, n));
    case 'F16': {
      const table = halfTableFloat32();
      const halves = new Uint16Array(le.buffer, le.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[halves[i]];
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place.
      const halves = new Uint16Array(le.buffer, le.byteOffset, n);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F8_E4M3':
      return lookup(le, (e4m3Table ??= byteTable(e4m3fnToFloat)));
    case 'F8_E5M2':
      return lookup(le, (e5m2Table ??= byteTable(e5m2ToFloat)));
    case 'F8_E8M0':
      return lookup(le, (e8m0Table ??= byteTable(e8m0ToFloat)));
    case 'BOOL': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = le[i] !== 0 ? 1 : 0;
      return out;
    }
    case 'U8':
      return new Float32Array(le);
    case 'I8':
      return new Float32Array(new Int8Array(le.buffer, le.byteOffset, n));
    case 'U16':
      return new Float32Array(new Uint16Array(le.buffer, le.byteOffset, n));
    case 'I16':
      return new Float32Array(new Int16Array(le.buffer, le.byteOffset, n));
    case 'U32':
      return new Float32Array(new Uint32Array(le.buffer, le.byteOffset, n));
    case 'I32':
      return new Float32Array(new Int32Array(le.buffer, le.byteOffset, n));
    case 'U64':
    case 'I64': {
      const wide = dtype === 'U64' ? new BigUint64Array(le.buffer, le.byteOffset, n) : new BigInt64Array(le.buffer, le.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(wide[i]);
      return out;
    }
    default:
      throw new SafetensorsError('UnsupportedDtype', file, `dtype ${dtype} cannot be decoded to float32`, tensor);
  }
}

/**
 * Encodes float32 values as little-endian bytes of `dtype` (F32, F64, F16 and BF16 rounded to
 * nearest even), so a merged tensor can be written back in its source dtype.
 */
export function encodeFromFloat32(dtype: string, values: Float32Array): Uint8Array {
  let out: Uint8Array;
  switch (dtype) {
    case 'F32':
      out = new Uint8Array(new Float32Array(values).buffer);
      break;
    case 'F64':
      out = new Uint8Array(new Float64Array(values).buffer);
      break;
    case 'F16':
    case 'BF16': {
      const convert = dtype === 'F16' ? floatToHalfBits : floatToBfloat16Bits;
      const halves = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) halves[i] = convert(values[i]);
      out = new Uint8Array(halves.buffer);
      break;
    }
    default:
      throw new SafetensorsError('UnsupportedDtype', 'tensor', `cannot encode float32 values as ${dtype} (supported: ${ENCODABLE_DTYPES.join(', ')})`);
  }
  if (!HOST_LITTLE_ENDIAN) swapBytes(out, ELEMENT_BYTES[dtype] ?? 1);
  return out;
}
