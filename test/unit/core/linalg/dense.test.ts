/** The blocked float64 product and transpose (src/core/linalg/dense.ts) against plain triple loops. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gemm, transpose } from '../../../../src/core/linalg';
import { mulberry32 } from '../../../../src/core/matching/prng';

describe('gemm and transpose', () => {
  it('match plain loops on shapes that straddle the tiles (130 x 257 times 257 x 520, and 1 x 1)', () => {
    const random = mulberry32(21);
    for (const [m, k, n] of [[130, 257, 520], [1, 1, 1], [3, 5, 2]]) {
      const a = Float64Array.from({ length: m * k }, () => random() - 0.5);
      const b = Float64Array.from({ length: k * n }, () => random() - 0.5);
      const c = gemm(a, b, m, k, n);
      let worst = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) acc += a[i * k + p] * b[p * n + j];
          worst = Math.max(worst, Math.abs(acc - c[i * n + j]));
        }
      }
      assert.ok(worst < 1e-12, `${m}x${k}x${n}: off by ${worst}`);
      const t = transpose(a, m, k);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) assert.equal(t[p * m + i], a[i * k + p]);
    }
  });

  it('refuses mismatched sizes in one line', () => {
    assert.throws(() => gemm(new Float64Array(6), new Float64Array(6), 2, 3, 3), /gemm: 6 and 6 values for 2x3 times 3x3/);
  });
});
