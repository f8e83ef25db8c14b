/**
 * The safetensors dtypes and their sizes in bits, as in the current specification
 * (huggingface/safetensors `Dtype`, including the FP8 / MX FP6 / FP4 additions of 0.6).
 */
export const DTYPE_BITS: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
});

/** Every dtype name the reader accepts. */
export const DTYPES: readonly string[] = Object.freeze(Object.keys(DTYPE_BITS));

export function isKnownDtype(dtype: string): boolean {
  return Object.prototype.hasOwnProperty.call(DTYPE_BITS, dtype);
}

/** Bits per element of a known dtype (throws on an unknown one: validate with isKnownDtype first). */
export function dtypeBits(dtype: string): number {
  const bits = isKnownDtype(dtype) ? DTYPE_BITS[dtype] : undefined;
  if (bits === undefined) throw new Error(`unknown dtype ${dtype}`);
  return bits;
}

/** Why a shape cannot be sized, for the caller to turn into its own error. */
export type SizeProblem = 'InvalidShape' | 'ValidationOverflow' | 'MisalignedSize';

/**
 * Element count and byte size of a tensor, computed like the reference's `checked_mul`: every
 * intermediate product must stay a safe integer, so a hostile header cannot make us compute
 * (or later allocate) a wrapped-around size.
 */
export function tensorSize(
  dtype: string,
  shape: readonly unknown[],
): { elements: number; bytes: number } | { problem: SizeProblem; detail: string } {
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const dim = shape[i];
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0) {
      return { problem: 'InvalidShape', detail: `dimension ${i} is ${JSON.stringify(dim) ?? String(dim)}, not a non-negative integer` };
    }
    if (!Number.isSafeInteger(dim)) {
      return { problem: 'ValidationOverflow', detail: `dimension ${i} (${dim}) is too large` };
    }
    elements *= dim;
    if (!Number.isSafeInteger(elements)) {
      return { problem: 'ValidationOverflow', detail: 'element count overflows' };
    }
  }
  const bits = elements * dtypeBits(dtype);
  if (!Number.isSafeInteger(bits)) return { problem: 'ValidationOverflow', detail: 'byte size overflows' };
  if (bits % 8 !== 0) {
    return { problem: 'MisalignedSize', detail: `${elements} ${dtype} elements are ${bits} bits, not a whole number of bytes` };
  }
  return { elements, bytes: bits / 8 };
}
