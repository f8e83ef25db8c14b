/**
 * Bit-exact conversions between float32 and the narrow float formats safetensors stores:
 * IEEE half (F16), bfloat16 (BF16), and the OCP FP8 formats F8_E4M3 (the "fn" variant PyTorch
 * calls float8_e4m3fn: no infinities, S.1111.111 is NaN, max 448) and F8_E5M2 (IEEE-like).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits -> float32 value. */
export function bitsToFloat32(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/** float32 value -> its bits (the value is first rounded to float32). */
export function float32ToBits(value: number): number {
  f32[0] = value;
  return u32[0];
}

/** Half-precision bits -> value (exact: every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let halfTable: Float32Array | undefined;
/** All 65,536 halves decoded once (256 KB), so decoding a tensor is one lookup per element. */
export function halfTableFloat32(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** float32 -> half bits, rounding to nearest, ties to even; overflow gives infinity, NaN stays NaN. */
export function floatToHalfBits(value: number): number {
  const x = float32ToBits(value);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is a half subnormal (or zero): m10 = significand * 2^(e - 14).
    const shift = 14 - e;
    if (shift > 24) return sign;
    const significand = mant | 0x800000;
    let q = significand >>> shift;
    const rem = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (q & 1) === 1)) q++;
    return sign | q; // q may reach 0x400: the smallest normal, encoded correctly
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++; // a carry into the exponent is right, up to infinity
  return sign | q;
}

/** float32 -> bfloat16 bits, rounding to nearest, ties to even; NaN stays a (quiet) NaN. */
export function floatToBfloat16Bits(value: number): number {
  const x = float32ToBits(value);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** F8_E4M3 (fn) byte -> value: bias 7, subnormals, no infinities, 0x7f / 0xff are NaN. */
export function e4m3fnToFloat(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9; // (mant / 8) * 2^-6
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** F8_E5M2 byte -> value: it is the top byte of an IEEE half. */
export function e5m2ToFloat(b: number): number {
  return halfToFloat(b << 8);
}

/** F8_E8M0 byte -> value: an unsigned power-of-two scale 2^(b - 127), 0xff is NaN (OCP MX). */
export function e8m0ToFloat(b: number): number {
  return b === 0xff ? NaN : 2 ** (b - 127);
}

/** A 256-entry lookup table for an 8-bit format. */
export function byteTable(decode: (b: number) => number): Float32Array {
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) table[b] = decode(b);
  return table;
}
