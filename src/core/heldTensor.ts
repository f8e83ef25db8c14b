/**
 * Tensors as weight matching holds them: float32, or 16-bit (BF16, F16) exactly as stored.
 * A 1B-parameter pair in BF16 is 4.1 GiB as stored and 8.2 GiB as float32 (issue 14: "kept in
 * their stored dtype until a product needs them"). Every product already builds its operands
 * (the axis in front, the other permutations applied), so decoding there costs one table lookup
 * per element on top of a gather that reads each element anyway.
 */
import type { DenseTensor } from './checkpoint';
import { halfTableFloat32 } from './safetensors/float-formats';

/** A tensor kept as its stored 16-bit floats, row-major. */
export interface HalfTensor {
  readonly shape: readonly number[];
  readonly dtype: 'BF16' | 'F16';
  readonly bits: Uint16Array;
}

export type HeldTensor = DenseTensor | HalfTensor;
export type HeldTensorMap = ReadonlyMap<string, HeldTensor>;

/**
 * A tensor's values for a gather: float32, or 16-bit patterns with their decoding table
 * (`bf16`: the pattern shifted left by 16 is the float32's bits, cheaper than the table).
 */
export type HeldValues = Float32Array | { readonly bits: Uint16Array; readonly table: Float32Array; readonly bf16: boolean };

export function isHalf(t: HeldTensor): t is HalfTensor {
  return 'bits' in t;
}

export function isHalfDtype(dtype: string): dtype is 'BF16' | 'F16' {
  return dtype === 'BF16' || dtype === 'F16';
}

let bf16Table: Float32Array | undefined;
/** All 65,536 bfloat16 patterns decoded once (256 KB): a bfloat16 is the top half of a float32. */
function bfloat16Table(): Float32Array {
  if (!bf16Table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = h << 16;
    bf16Table = new Float32Array(bits.buffer);
  }
  return bf16Table;
}

export function decodingTable(dtype: 'BF16' | 'F16'): Float32Array {
  return dtype === 'BF16' ? bfloat16Table() : halfTableFloat32();
}

export function elementCount(t: { readonly shape: readonly number[] }): number {
  return t.shape.reduce((p, s) => p * s, 1);
}

/**
 * Out-of-core weight matching: a tensor whose values (`bits` or `data`) are a getter that reads
 * them when asked for, so that the pair may exceed memory. Such a tensor holds no values itself:
 * its reader decides what stays (src/engine/streamedTensors.ts). Every consumer reads the values
 * once per use (a gather, a product's operand), so the code is the same for both kinds.
 */
const STREAMED = Symbol('streamed');

export function isStreamed(t: HeldTensor): boolean {
  return STREAMED in t;
}

/** A 16-bit tensor read by `read` at each use (see STREAMED). */
export function streamedHalf(shape: readonly number[], dtype: 'BF16' | 'F16', read: () => Uint16Array): HalfTensor {
  return Object.defineProperty({ shape, dtype, [STREAMED]: true }, 'bits', { get: read, enumerable: true }) as unknown as HalfTensor;
}

/** A float32 tensor computed or read by `read` at each use (see STREAMED). */
export function streamedDense(shape: readonly number[], read: () => Float32Array): DenseTensor {
  return Object.defineProperty({ shape, [STREAMED]: true }, 'data', { get: read, enumerable: true }) as unknown as DenseTensor;
}

/** Bytes the tensor's values take in memory (none for a streamed one: it is read at each use). */
export function heldBytes(t: HeldTensor): number {
  if (isStreamed(t)) return 0;
  return isHalf(t) ? t.bits.byteLength : t.data.byteLength;
}

export function valuesOf(t: HeldTensor): HeldValues {
  return isHalf(t) ? { bits: t.bits, table: decodingTable(t.dtype), bf16: t.dtype === 'BF16' } : t.data;
}

/**
 * The tensor's values as float32: a float32 tensor's own array (not a copy), else decoded into
 * `into` (its first values; at least as long as the tensor) or a new array.
 */
export function float32Of(t: HeldTensor, into?: Float32Array): Float32Array {
  if (!isHalf(t)) return t.data;
  const { bits } = t;
  const out = into ? into.subarray(0, bits.length) : new Float32Array(bits.length);
  if (t.dtype === 'BF16') {
    const out32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < bits.length; i++) out32[i] = bits[i] << 16;
  } else {
    const table = decodingTable(t.dtype);
    for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  }
  return out;
}

/** The tensor as a float32 DenseTensor (a 16-bit one decoded into a new array). */
export function denseOf(t: HeldTensor): DenseTensor {
  return isHalf(t) ? { shape: t.shape, data: float32Of(t) } : t;
}

/** The tensors as float32 (the float32 ones as they are, 16-bit ones decoded into new arrays). */
export function denseTensors(m: HeldTensorMap): Map<string, DenseTensor> {
  return new Map([...m].map(([name, t]) => [name, denseOf(t)]));
}

/** The exponent bits of a 16-bit float: a pattern with all of them set is NaN or ±Inf. */
export function exponentMask(dtype: 'BF16' | 'F16'): number {
  return dtype === 'BF16' ? 0x7f80 : 0x7c00;
}

