import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gatherAxes } from '../../../../src/core/matching/permute';
import { mulberry32, shuffleInPlace } from '../../../../src/core/matching/prng';

/** out[i_order...] = data[perm_d(i_d)...], index by index: the definition gatherAxes implements. */
function plainGather(data: Float32Array, shape: readonly number[], perms: readonly (Int32Array | null)[], order: readonly number[]): Float32Array {
  const [r, c] = shape;
  const out = new Float32Array(r * c);
  const outCols = shape[order[1]];
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const src = (perms[0] ? perms[0][i] : i) * c + (perms[1] ? perms[1][j] : j);
      const idx = [i, j];
      out[idx[order[0]] * outCols + idx[order[1]]] = data[src];
    }
  }
  return out;
}

test('gatherAxes on a matrix (moved axis, permuted rows and columns) equals the plain gather', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 80 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(), (r, c, permRows, permCols, moved, seed) => {
    const rand = mulberry32(seed);
    const data = Float32Array.from({ length: r * c }, () => rand() - 0.5);
    const perm = (n: number): Int32Array => Int32Array.from(shuffleInPlace(Array.from({ length: n }, (_, i) => i), rand));
    const perms = [permRows ? perm(r) : null, permCols ? perm(c) : null];
    const order = moved ? [1, 0] : [0, 1];
    const want = plainGather(data, [r, c], perms, order);
    assert.deepEqual(gatherAxes(data, [r, c], perms, order), want);
    const buffer = new Float32Array(r * c + 5).fill(-9);
    assert.deepEqual(gatherAxes(data, [r, c], perms, order, buffer), want);
    assert.deepEqual([...buffer.subarray(r * c)], new Array(5).fill(-9));
  }), { numRuns: 200 });
});
