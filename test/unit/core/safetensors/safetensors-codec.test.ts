import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SafetensorsError, decodeToFloat32, encodeFromFloat32 } from '../../../../src/core/safetensors';

const bytesOf = (...b: number[]): Uint8Array => Uint8Array.from(b);
const u16Bytes = (...h: number[]): Uint8Array => new Uint8Array(Uint16Array.from(h).buffer);
const f16Bits = (v: number): number => new Uint16Array(encodeFromFloat32('F16', Float32Array.of(v)).buffer)[0];
const bf16Bits = (v: number): number => new Uint16Array(encodeFromFloat32('BF16', Float32Array.of(v)).buffer)[0];

describe('float16 and bfloat16 conversions', () => {
  it('decodes every half exactly and encodes it back to the same bits (NaNs stay NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = decodeToFloat32('F16', new Uint8Array(all.buffer));
    const back = new Uint16Array(encodeFromFloat32('F16', values).buffer);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) {
        assert.ok(Number.isNaN(values[h]));
        assert.ok((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0, 'NaN encodes as NaN');
      } else {
        assert.equal(back[h], h, `half 0x${h.toString(16)}`);
      }
    }
    assert.deepEqual([...values.subarray(0x3c00, 0x3c01)], [1]);
    assert.equal(values[0x7bff], 65504);
    assert.equal(values[0x0001], 2 ** -24);
    assert.equal(values[0xfc00], -Infinity);
  });

  it('rounds float32 to half to nearest, ties to even, in normal and subnormal ranges', () => {
    assert.equal(f16Bits(1 + 2 ** -11), 0x3c00, 'tie between 1 and 1+2^-10 goes to even 1');
    assert.equal(f16Bits(1 + 3 * 2 ** -11), 0x3c02, 'tie goes up to the even mantissa');
    assert.equal(f16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01, 'above the tie rounds up');
    assert.equal(f16Bits(65519), 0x7bff, 'just under the overflow threshold stays 65504');
    assert.equal(f16Bits(65520), 0x7c00, '65520 rounds to infinity');
    assert.equal(f16Bits(-1e6), 0xfc00);
    assert.equal(f16Bits(2 ** -25), 0x0000, 'half the smallest subnormal ties to zero');
    assert.equal(f16Bits(3 * 2 ** -26), 0x0001);
    assert.equal(f16Bits(1.5 * 2 ** -24), 0x0002, 'tie between subnormals 1 and 2 goes to 2');
    assert.equal(f16Bits(2 ** -14 - 2 ** -25), 0x0400, 'rounds up from the largest subnormal into the smallest normal');
    assert.equal(f16Bits(-0), 0x8000);
    assert.equal(f16Bits(1e-30), 0x0000);
  });

  it('decodes bfloat16 as the top half of float32 and encodes every value back exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = decodeToFloat32('BF16', new Uint8Array(all.buffer));
    const back = new Uint16Array(encodeFromFloat32('BF16', values).buffer);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) assert.ok(Number.isNaN(values[h]) && Number.isNaN(decodeToFloat32('BF16', u16Bytes(back[h]))[0]));
      else assert.equal(back[h], h);
    }
    assert.equal(values[0x3f80], 1);
    assert.equal(values[0xc000], -2);
  });

  it('rounds float32 to bfloat16 to nearest, ties to even', () => {
    assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(bf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
    assert.equal(bf16Bits(3.4028234663852886e38), 0x7f80, 'max float32 rounds to infinity');
    assert.ok(Number.isNaN(decodeToFloat32('BF16', u16Bytes(bf16Bits(NaN)))[0]));
  });
});

describe('float8 decoding', () => {
  it('decodes F8_E4M3 as float8_e4m3fn: bias 7, subnormals, max 448, no infinities', () => {
    const v = decodeToFloat32('F8_E4M3', bytesOf(0x00, 0x01, 0x07, 0x08, 0x38, 0x3c, 0x7e, 0x7f, 0x80, 0xfe, 0xff, 0x78));
    assert.deepEqual([...v.subarray(0, 7)], [0, 2 ** -9, 7 * 2 ** -9, 2 ** -6, 1, 1.5, 448]);
    assert.ok(Number.isNaN(v[7]));
    assert.ok(Object.is(v[8], -0));
    assert.equal(v[9], -448);
    assert.ok(Number.isNaN(v[10]));
    assert.equal(v[11], 256, '0x78 is 2^8, a number, not infinity');
  });

  it('decodes F8_E5M2 like the top byte of a half, with infinities and NaN', () => {
    const v = decodeToFloat32('F8_E5M2', bytesOf(0x3c, 0x01, 0x7b, 0x7c, 0xfc, 0x7d, 0x40));
    assert.deepEqual([...v.subarray(0, 5)], [1, 2 ** -16, 57344, Infinity, -Infinity]);
    assert.ok(Number.isNaN(v[5]));
    assert.equal(v[6], 2);
  });

  it('decodes F8_E8M0 scales as powers of two with 0xff NaN', () => {
    const v = decodeToFloat32('F8_E8M0', bytesOf(127, 128, 0, 0xff));
    assert.deepEqual([...v.subarray(0, 3)], [1, 2, 2 ** -127]);
    assert.ok(Number.isNaN(v[3]));
  });
});

describe('integer, bool and wide types', () => {
  it('converts integers (incl. 64-bit) and bools to float32', () => {
    assert.deepEqual([...decodeToFloat32('I8', bytesOf(0x80, 0x7f, 0xff))], [-128, 127, -1]);
    assert.deepEqual([...decodeToFloat32('U16', u16Bytes(65535, 1))], [65535, 1]);
    assert.deepEqual([...decodeToFloat32('I64', new Uint8Array(BigInt64Array.of(-5n, 1n << 40n).buffer))], [-5, 2 ** 40]);
    assert.deepEqual([...decodeToFloat32('U64', new Uint8Array(BigUint64Array.of(7n).buffer))], [7]);
    assert.deepEqual([...decodeToFloat32('U32', new Uint8Array(Uint32Array.of(4294967295).buffer))], [4294967296]);
    assert.deepEqual([...decodeToFloat32('BOOL', bytesOf(0, 1, 2))], [0, 1, 1]);
  });

  it('decodes from Node Buffers at unaligned byteOffsets (copying them first)', () => {
    const f32 = new Uint8Array(Float32Array.of(1.5, -2.25, 3).buffer);
    const f64 = new Uint8Array(Float64Array.of(0.1, -7).buffer);
    const host = Buffer.alloc(64);
    const odd = host.subarray(3, 3 + f32.length);
    odd.set(f32);
    assert.deepEqual([...decodeToFloat32('F32', odd)], [1.5, -2.25, 3]);
    const odd64 = host.subarray(21, 21 + f64.length);
    odd64.set(f64);
    assert.deepEqual([...decodeToFloat32('F64', odd64)], [Math.fround(0.1), -7]);
    const odd16 = host.subarray(41, 45);
    odd16.set(encodeFromFloat32('F16', Float32Array.of(0.5, -4)));
    assert.deepEqual([...decodeToFloat32('F16', odd16)], [0.5, -4]);
  });

  it('encodes F32 and F64 exactly', () => {
    const values = Float32Array.of(0.1, -3.5, 1e-40, Infinity);
    assert.deepEqual(decodeToFloat32('F32', encodeFromFloat32('F32', values)), values);
    assert.deepEqual(decodeToFloat32('F64', encodeFromFloat32('F64', values)), values);
    assert.equal(encodeFromFloat32('F64', values).length, 32);
  });

  it('refuses dtypes it cannot convert, with a named error', () => {
    for (const dtype of ['F4', 'F6_E2M3', 'C64']) {
      assert.throws(() => decodeToFloat32(dtype, bytesOf(0, 0, 0, 0, 0, 0, 0, 0)), (e: unknown) => e instanceof SafetensorsError && e.kind === 'UnsupportedDtype');
    }
    assert.throws(() => encodeFromFloat32('I32', Float32Array.of(1)), (e: unknown) => e instanceof SafetensorsError && e.kind === 'UnsupportedDtype');
    assert.throws(() => decodeToFloat32('F32', bytesOf(1, 2, 3)), (e: unknown) => e instanceof SafetensorsError && e.kind === 'InvalidTensorInfo');
  });
});
