/**
 * Tensors held as their stored 16-bit floats (src/core/heldTensor.ts): decoding matches the
 * safetensors codec for every pattern, gathers and permuted dot products on 16-bit values equal
 * those on the decoded float32 copy, and weight matching on BF16-held models finds the same
 * permutations and objectives as on their float32 decoding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DenseTensor, PermSpec } from '../../../src/core/checkpoint';
import { decodingTable, denseOf, float32Of, heldBytes, exponentMask, valuesOf, type HalfTensor, type HeldTensor } from '../../../src/core/heldTensor';
import { decodeToFloat32 } from '../../../src/core/safetensors';
import { floatToBfloat16Bits, floatToHalfBits } from '../../../src/core/safetensors/float-formats';
import { jsMatMul } from '../../../src/core/matching/jsMatMul';
import { gatherAxes, permutedDot, randomPermutations, applyPermutations } from '../../../src/core/matching/permute';
import { mulberry32 } from '../../../src/core/matching/prng';
import { weightMatching } from '../../../src/core/matching/weightMatching';

function allPatterns(): Uint16Array {
  const bits = new Uint16Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = h;
  return bits;
}

for (const dtype of ['BF16', 'F16'] as const) {
  test(`${dtype}: the decoding table equals the codec's decoding for all 65,536 patterns, and NaN/Inf patterns are the non-finite ones`, () => {
    const bits = allPatterns();
    const table = decodingTable(dtype);
    const mask = exponentMask(dtype);
    const codec = decodeToFloat32(dtype, new Uint8Array(bits.buffer));
    for (let h = 0; h < 65536; h++) {
      assert.ok(Object.is(table[h], codec[h]), `pattern ${h.toString(16)}: ${table[h]} vs ${codec[h]}`);
      assert.equal((h & mask) === mask, !Number.isFinite(codec[h]), `pattern ${h.toString(16)}`);
    }
    const t: HalfTensor = { shape: [256, 256], dtype, bits };
    const decoded = float32Of(t);
    // Element by element: NaN payloads may differ between the two decodings' bytes.
    for (let h = 0; h < 65536; h++) assert.ok(Object.is(decoded[h], codec[h]));
    assert.equal(heldBytes(t), 2 * 65536);
  });
}

function halfOf(t: DenseTensor, dtype: 'BF16' | 'F16'): HalfTensor {
  const encode = dtype === 'BF16' ? floatToBfloat16Bits : floatToHalfBits;
  return { shape: t.shape, dtype, bits: Uint16Array.from(t.data, (v) => encode(v)) };
}

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 });
const caseArb = shapeArb.chain((shape) => fc.record({
  shape: fc.constant(shape),
  perms: fc.tuple(...shape.map((n) => fc.option(fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }), { nil: null }))),
  order: fc.shuffledSubarray(shape.map((_, d) => d), { minLength: shape.length, maxLength: shape.length }),
  seed: fc.integer(),
  dtype: fc.constantFrom('BF16' as const, 'F16' as const),
}));

test('gathers and permuted dot products of 16-bit values equal those of their float32 decoding', () => {
  fc.assert(fc.property(caseArb, ({ shape, perms, order, seed, dtype }) => {
    const r = mulberry32(seed);
    const size = shape.reduce((p, s) => p * s, 1);
    const half = halfOf({ shape, data: Float32Array.from({ length: size }, () => 4 * r() - 2) }, dtype);
    const other = halfOf({ shape, data: Float32Array.from({ length: size }, () => 4 * r() - 2) }, dtype);
    const dense = denseOf(half);
    const axisPerms = perms.map((p) => (p ? Int32Array.from(p) : null));
    const want = gatherAxes(dense.data, shape, axisPerms, order);
    assert.deepEqual(gatherAxes(valuesOf(half), shape, axisPerms, order), want);
    // Into a reused buffer longer than the tensor (its first values), 16-bit and float32 alike.
    for (const values of [valuesOf(half), dense.data]) {
      const buffer = new Float32Array(size + 7).fill(-9);
      const got = gatherAxes(values, shape, axisPerms, order, buffer);
      assert.equal(got.buffer, buffer.buffer);
      assert.deepEqual(got, want);
      assert.deepEqual([...buffer.subarray(size)], new Array(7).fill(-9));
    }
    const decoded = float32Of(half, new Float32Array(size + 3));
    assert.deepEqual(decoded, dense.data);
    // Same float32 operands, summed in the same row order: equal up to float64 rounding.
    const dot = permutedDot(denseOf(other).data, dense.data, shape, axisPerms);
    for (const got of [permutedDot(valuesOf(other), valuesOf(half), shape, axisPerms), permutedDot(denseOf(other).data, valuesOf(half), shape, axisPerms)]) {
      assert.ok(Math.abs(got - dot) <= 1e-12 * (1 + Math.abs(dot)), `${got} vs ${dot}`);
    }
  }), { numRuns: 300 });
});

/** A 3-layer MLP and a conv layer: P0, P1 on hidden units, C on channels (a 4-D tensor with P on axis 1). */
const spec: PermSpec = {
  perms: { P0: 24, P1: 20, C: 6 },
  axes: {
    'l0.weight': ['P0', null], 'l0.bias': ['P0'],
    'l1.weight': ['P1', 'P0'], 'l1.bias': ['P1'],
    'l2.weight': [null, 'P1'],
    'c1.weight': ['C', null, null, null], 'c2.weight': [null, 'C', 3, 3].map((x) => (typeof x === 'number' ? null : x)) as (string | null)[],
  },
};
const shapes: Record<string, number[]> = {
  'l0.weight': [24, 12], 'l0.bias': [24], 'l1.weight': [20, 24], 'l1.bias': [20], 'l2.weight': [5, 20],
  'c1.weight': [6, 3, 3, 3], 'c2.weight': [4, 6, 3, 3],
};

test('weight matching on BF16-held models finds the permutations and objectives of their float32 decoding', async () => {
  for (const seed of [1, 2, 3]) {
    const r = mulberry32(seed);
    const model = (): Map<string, HalfTensor> => new Map(Object.entries(shapes).map(([name, shape]) => {
      const size = shape.reduce((p, s) => p * s, 1);
      return [name, halfOf({ shape, data: Float32Array.from({ length: size }, () => 2 * r() - 1) }, 'BF16')];
    }));
    const a = model();
    // B: A permuted plus noise, so the matching has a non-trivial answer.
    const permuted = applyPermutations(spec, randomPermutations(spec, seed + 10), new Map([...a].map(([n, t]) => [n, denseOf(t)])));
    const b = new Map([...permuted].map(([n, t]) => [n, halfOf({ shape: t.shape, data: t.data.map((v) => v + 0.3 * (r() - 0.5)) }, 'BF16')]));
    const dense = (m: Map<string, HeldTensor>): Map<string, DenseTensor> => new Map([...m].map(([n, t]) => [n, denseOf(t)]));
    const opts = { seed, maxIter: 20, matmul: jsMatMul };
    const held = await weightMatching(spec, a, b, opts);
    const ref = await weightMatching(spec, dense(a), dense(b), opts);
    assert.deepEqual(held.perms, ref.perms);
    assert.equal(held.iterations, ref.iterations);
    assert.ok(Math.abs(held.objectiveAfter - ref.objectiveAfter) <= 1e-9 * Math.abs(ref.objectiveAfter));
    assert.ok(Math.abs(held.objectiveBefore - ref.objectiveBefore) <= 1e-9 * Math.abs(ref.objectiveBefore));
    // The budgeted path (memory plan, cache accounting) sees 2 bytes a value and finds the same.
    const budgeted = await weightMatching(spec, a, b, { ...opts, memoryBudget: 1 << 20 });
    assert.deepEqual(budgeted.perms, ref.perms);
  }
});
