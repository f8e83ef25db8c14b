/**
 * The feature-axis maps of src/core/symmetry/orthogonal.ts against plain float64 products, and
 * the rotary-safe head maps against the rotary rotation itself (rotate-half layout).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { matMul } from '../../../../src/core/linalg';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { commutesWithRotary, gaussian, orthogonalityError, permuteAxis, randomOrthogonal, randomRotaryCommuting, rotateAxis, scaleAxis } from '../../../../src/core/symmetry/orthogonal';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** The rotary map of one position (rotate-half layout): x -> x cos + rotate_half(x) sin, as a matrix acting on rows. */
function rotaryMatrix(n: number, angles: number[]): Float64Array {
  const half = n / 2;
  const m = new Float64Array(n * n);
  for (let e = 0; e < half; e++) {
    const [c, s] = [Math.cos(angles[e]), Math.sin(angles[e])];
    // y_e = x_e c - x_{e+half} s ; y_{e+half} = x_{e+half} c + x_e s
    m[e * n + e] = c;
    m[(e + half) * n + e] = -s;
    m[(e + half) * n + e + half] = c;
    m[e * n + e + half] = s;
  }
  return m;
}

const mul = (a: Float64Array, b: Float64Array, n: number) => matMul(a, false, b, false, n);

describe('feature-axis maps', () => {
  it('fast-check: rotateAxis is v -> vQ on a slice along either axis, permuteAxis and scaleAxis likewise', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer(), (rows, n, start, seed) => {
        const random = mulberry32(seed);
        const cols = start + n + 1;
        const t = { shape: [rows, cols], data: Float32Array.from({ length: rows * cols }, () => gaussian(random)) };
        const q = randomOrthogonal(n, random);
        const byRows = rotateAxis(t, 1, start, q, n);
        const tt = { shape: [cols, rows], data: Float32Array.from({ length: rows * cols }, (_, i) => t.data[(i % rows) * cols + Math.floor(i / rows)]) };
        const byCols = rotateAxis(tt, 0, start, q, n);
        const perm = Array.from({ length: n }, (_, i) => (i + 1) % n);
        const permuted = permuteAxis(t, 1, start, perm);
        const permutedT = permuteAxis(tt, 0, start, perm);
        const gain = Float32Array.from({ length: cols }, () => gaussian(random));
        const scaled = scaleAxis(t, 1, gain);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            let want = t.data[r * cols + c];
            if (c >= start && c < start + n) {
              want = 0;
              for (let k = 0; k < n; k++) want += t.data[r * cols + start + k] * q[k * n + c - start];
            }
            if (Math.abs(byRows.data[r * cols + c] - want) > 1e-5 || Math.abs(byCols.data[c * rows + r] - want) > 1e-5) return false;
            const p = c >= start && c < start + n ? start + perm[c - start] : c;
            if (permuted.data[r * cols + c] !== t.data[r * cols + p] || permutedT.data[c * rows + r] !== t.data[r * cols + p]) return false;
            if (scaled.data[r * cols + c] !== Math.fround(t.data[r * cols + c] * gain[c])) return false;
          }
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });
});

describe('rotary-safe head maps', () => {
  it('a random rotary-commuting map is orthogonal and commutes with the rotation of every position', () => {
    const random = mulberry32(9);
    const n = 16;
    for (let trial = 0; trial < 5; trial++) {
      const m = randomRotaryCommuting(n, random);
      assert.ok(orthogonalityError(m, n) < 1e-12);
      assert.ok(commutesWithRotary(m, n));
      const rot = rotaryMatrix(n, Array.from({ length: n / 2 }, () => 10 * random()));
      assert.ok(maxDiff(mul(m, rot, n), mul(rot, m, n)) < 1e-12);
    }
  });

  it('a general orthogonal map, or a swap of two dimensions inside a pair, does not commute', () => {
    const random = mulberry32(10);
    const n = 8;
    assert.equal(commutesWithRotary(randomOrthogonal(n, random), n), false);
    const swap = new Float64Array(n * n);
    for (let i = 0; i < n; i++) swap[i * n + (i === 0 ? n / 2 : i === n / 2 ? 0 : i)] = 1;
    assert.equal(commutesWithRotary(swap, n), false);
    const rot = rotaryMatrix(n, [0.3, 0.7, 1.1, 1.9]);
    assert.ok(maxDiff(mul(swap, rot, n), mul(rot, swap, n)) > 0.1);
  });
});
