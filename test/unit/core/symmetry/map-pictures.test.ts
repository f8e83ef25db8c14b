/**
 * The pictures of orthogonal maps the panel draws (src/core/symmetry/mapPictures.ts): |R| by
 * block max, exact on small known matrices, a permutation's one 1 per row, and the total size
 * bound whatever the number of maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAP_PICTURE_MAX_SIDE, MAP_PICTURES_MAX_CELLS, mapPicture, withPictures } from '../../../../src/core/symmetry/mapPictures';
import { randomOrthogonal } from '../../../../src/core/symmetry';
import { mulberry32 } from '../../../../src/core/matching/prng';

test('a map no larger than the cap is drawn one cell per entry, as |R|', () => {
  const r = Float64Array.from([0.6, -0.8, 0.8, 0.6]);
  const p = mapPicture(r, 2);
  assert.equal(p.side, 2);
  assert.equal(p.block, 1);
  assert.deepEqual([...p.values], [0.6, 0.8, 0.8, 0.6].map(Math.fround));
});

test('a larger map is reduced by block max of |R|, partial edge blocks included', () => {
  // 5 × 5, cap 2 → blocks of 3: cells cover rows/columns {0,1,2} and {3,4}.
  const r = Float64Array.from([
    0.1, -0.2, 0.3, 0.0, 0.0,
    0.0, 0.0, -0.9, 0.5, 0.0,
    0.0, 0.0, 0.0, 0.0, -0.4,
    -0.7, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.25, 0.0, 0.0, 0.0,
  ]);
  const p = mapPicture(r, 5, 2);
  assert.equal(p.block, 3);
  assert.equal(p.side, 2);
  assert.deepEqual([...p.values], [0.9, 0.5, 0.7, 0].map(Math.fround));
});

test('a signed permutation shows one 1 per row, also after reduction', () => {
  const n = 12;
  const perm = [5, 2, 11, 0, 7, 1, 9, 3, 10, 4, 8, 6];
  const r = new Float64Array(n * n);
  perm.forEach((j, i) => (r[i * n + j] = i % 2 === 0 ? 1 : -1));
  const whole = mapPicture(r, n);
  for (let i = 0; i < n; i++) {
    const row = [...whole.values.subarray(i * n, (i + 1) * n)];
    assert.deepEqual(row, row.map((_, j) => (j === perm[i] ? 1 : 0)), `row ${i}`);
  }
  // Blocks of 3: every row of cells holds a 1 (block max keeps them at 1; a mean would show 1/9).
  const reduced = mapPicture(r, n, 4);
  assert.equal(reduced.side, 4);
  for (let i = 0; i < 4; i++) {
    const row = [...reduced.values.subarray(i * 4, (i + 1) * 4)];
    assert.equal(Math.max(...row), 1, `row ${i}`);
    assert.ok(row.every((v) => v === 0 || v === 1));
  }
});

test('a random rotation has no row with a 1 and the values stay within 0 … 1', () => {
  const n = 40;
  const p = mapPicture(randomOrthogonal(n, mulberry32(3)), n);
  for (let i = 0; i < n; i++) assert.ok(Math.max(...p.values.subarray(i * n, (i + 1) * n)) < 0.9);
  assert.ok(p.values.every((v) => v >= 0 && v <= 1 + 1e-6));
});

test('withPictures keeps each summary, caps the residual stream at 256 per side and all maps at the budget', () => {
  const identity = (n: number) => {
    const r = new Float64Array(n * n);
    for (let i = 0; i < n; i++) r[i * n + i] = 1;
    return r;
  };
  const summary = (size: number) => ({ size, rowMaxMean: 1, objectiveBefore: 0, objectiveAfter: 1 });
  // A 768-wide residual stream and 12 layers × 12 heads of 64 (GPT-2 small): everything fits at full head size.
  const [d, hd, layers, heads] = [768, 64, 12, 12];
  const grid = <T>(f: () => T) => Array.from({ length: layers }, () => Array.from({ length: heads }, f));
  const s = { residual: summary(d), qk: grid(() => summary(hd)), vo: grid(() => summary(hd)) };
  const head = identity(hd);
  const maps = { residual: identity(d), qk: grid(() => head), vo: grid(() => head) };
  const full = withPictures(s, maps);
  assert.equal(full.residual.picture.side, MAP_PICTURE_MAX_SIDE);
  assert.equal(full.residual.picture.block, 3);
  assert.equal(full.residual.rowMaxMean, 1);
  assert.equal(full.qk[11][11].picture.side, 64);
  assert.equal(full.vo[0][0].picture.block, 1);
  const cells = (x: typeof full) => [x.residual, ...x.qk.flat(), ...x.vo.flat()].reduce((a, m) => a + m.picture.values.length, 0);
  assert.ok(cells(full) <= MAP_PICTURES_MAX_CELLS);
  // A smaller budget: the head maps share what the residual stream leaves, reduced by whole blocks.
  const budget = 256 * 256 + 288 * 20 * 20;
  const small = withPictures(s, maps, budget);
  assert.equal(small.residual.picture.side, 256);
  assert.equal(small.qk[0][0].picture.block, 4);
  assert.equal(small.qk[0][0].picture.side, 16);
  assert.ok(cells(small) <= budget);
  // Each picture still shows the identity's one 1 per row of cells.
  const p = small.vo[3][5].picture;
  for (let i = 0; i < p.side; i++) assert.equal(p.values[i * p.side + i], 1);
});
