/**
 * The host-side helpers behind the panels: matrices above 1024 per side are block-averaged before
 * they are posted to a webview, and merge's λ suggestion comes from the lowest interior point of
 * the last barrier curve.
 */
import * as assert from 'node:assert/strict';
import type { AlignResult } from '../../src/engine/protocol';
import { MAX_HEATMAP_SIDE, downsampleSquare, heatmapsOf } from '../../src/extension/heatmaps';
import { bestLambda } from '../../src/extension/runHistory';

describe('heatmaps for the alignment panel', function () {
  it('keeps matrices up to the limit as they are', function () {
    const m = new Float32Array([1, 2, 3, 4]);
    const r = downsampleSquare(m, 2, 2);
    assert.equal(r.size, 2);
    assert.equal(r.data, m);
  });

  it('block-averages larger matrices to at most the limit per side', function () {
    // 5×5 with cell value = row*10 + col, reduced by factor 2 to 3×3 (last block partial).
    const n = 5;
    const m = new Float32Array(n * n).map((_, k) => Math.floor(k / n) * 10 + (k % n));
    const r = downsampleSquare(m, n, 3);
    assert.equal(r.size, 3);
    assert.equal(r.data[0], (0 + 1 + 10 + 11) / 4);
    assert.equal(r.data[2], (4 + 14) / 2);
    assert.equal(r.data[8], 44);
  });

  it('caps every posted heatmap at 1024 per side and keeps the full permutation', function () {
    const size = 2050;
    const before = new Float32Array(size * size).fill(1);
    const after = new Float32Array(size * size).fill(2);
    const perm = Array.from({ length: size }, (_, i) => size - 1 - i);
    const result = {
      perms: { P: perm },
      matrices: [{ name: 'P', size, before, after }],
    } as unknown as AlignResult;
    const [h] = heatmapsOf(result);
    assert.ok(h.size <= MAX_HEATMAP_SIDE, `side ${h.size}`);
    assert.equal(h.originalSize, size);
    assert.equal(h.before.length, h.size * h.size);
    assert.ok(h.before.every((v) => v === 1) && h.after.every((v) => v === 2));
    assert.equal(h.perm.length, size);
  });
});

describe('merge λ suggestion', function () {
  const curve = (loss: number[], aligned?: number[]) => ({
    lambdas: loss.map((_, i) => i / (loss.length - 1)),
    naive: { loss, acc: loss.map(() => 0) },
    aligned: aligned ? { loss: aligned, acc: aligned.map(() => 0) } : undefined,
    barrier: { naive: 0 },
  });

  it('picks the lowest interior point of the aligned path', function () {
    assert.equal(bestLambda(curve([1, 3, 2, 3, 1], [1, 0.9, 0.8, 0.95, 1])), 0.5);
  });

  it('falls back to the naive path and ignores the endpoints', function () {
    assert.equal(bestLambda(curve([0, 2, 1.5, 3, 0])), 0.5);
    assert.equal(bestLambda(curve([1, 1])), undefined);
  });
});
