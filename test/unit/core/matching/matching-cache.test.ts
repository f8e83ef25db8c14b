/**
 * Weight matching's cache of contributions (src/core/matching/weightMatching.ts): cached products
 * updated by low-rank corrections (B's operand rebuilt from the permutations it was computed
 * with) give the permutations of recomputing every product at every solve, and the measured
 * residency (`residentBytes`) keeps new entries out of the cache when the budget is reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor, MatMulABt, PermSpec } from '../../../../src/core/checkpoint';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { floatToBfloat16Bits } from '../../../../src/core/safetensors/float-formats';
import type { HalfTensor } from '../../../../src/core/heldTensor';

const WIDTHS = [16, 40, 40, 40, 40, 6];

function mlp(seed: number): { spec: PermSpec; model: Map<string, DenseTensor> } {
  const r = mulberry32(seed);
  const perms: Record<string, number> = {};
  const axes: Record<string, (string | null)[]> = {};
  const model = new Map<string, DenseTensor>();
  for (let l = 0; l + 1 < WIDTHS.length; l++) {
    const out = l + 2 < WIDTHS.length ? `P${l}` : null;
    const inp = l > 0 ? `P${l - 1}` : null;
    if (out) perms[out] = WIDTHS[l + 1];
    axes[`l${l}.weight`] = [out, inp];
    axes[`l${l}.bias`] = [out];
    model.set(`l${l}.weight`, { shape: [WIDTHS[l + 1], WIDTHS[l]], data: Float32Array.from({ length: WIDTHS[l + 1] * WIDTHS[l] }, () => 2 * r() - 1) });
    model.set(`l${l}.bias`, { shape: [WIDTHS[l + 1]], data: Float32Array.from({ length: WIDTHS[l + 1] }, () => 2 * r() - 1) });
  }
  return { spec: { perms, axes }, model };
}

/** Records the inner dimension of every product. */
function recording(): { matmul: MatMulABt; ks: number[] } {
  const ks: number[] = [];
  return { ks, matmul: { abT: (a, b, m, k, n) => { ks.push(k); return jsMatMul.abT(a, b, m, k, n); } } };
}

test('cached products with low-rank updates find the permutations of recomputing every product', async () => {
  let lowRankSeen = false;
  for (const seed of [1, 2, 3, 4]) {
    const { spec, model: a } = mlp(seed);
    const r = mulberry32(seed + 100);
    // B: a noisy permuted A (noise large enough that the descent takes several sweeps), held as BF16.
    const permuted = applyPermutations(spec, randomPermutations(spec, seed), a);
    const b = new Map<string, HalfTensor>([...permuted].map(([n, t]) => [n, { shape: t.shape, dtype: 'BF16', bits: Uint16Array.from(t.data, (v) => floatToBfloat16Bits(v + 1.5 * (r() - 0.5))) }]));
    const cachedRun = recording();
    const cached = await weightMatching(spec, a, b, { seed, maxIter: 50, matmul: cachedRun.matmul });
    const recomputed = await weightMatching(spec, a, b, { seed, maxIter: 50, matmul: jsMatMul, cacheBytes: 0 });
    assert.deepEqual(cached.perms, recomputed.perms, `seed ${seed}`);
    assert.equal(cached.iterations, recomputed.iterations);
    assert.ok(Math.abs(cached.objectiveAfter - recomputed.objectiveAfter) <= 1e-9 * Math.abs(recomputed.objectiveAfter));
    // A product over fewer columns than any tensor's full width is a low-rank update.
    const widths = new Set(WIDTHS);
    if (cachedRun.ks.some((k) => !widths.has(k))) lowRankSeen = true;
  }
  assert.ok(lowRankSeen, 'some solve updated a cached product by its changed columns');
});

test('with a measured residency at the budget, nothing new is cached: every solve recomputes its products', async () => {
  const { spec, model: a } = mlp(5);
  const b = applyPermutations(spec, randomPermutations(spec, 5), a);
  const roomy = recording();
  const full = recording();
  const budget = 1e9;
  const r1 = await weightMatching(spec, a, b, { seed: 1, maxIter: 50, matmul: roomy.matmul, memoryBudget: budget, residentBytes: () => 0 });
  const r2 = await weightMatching(spec, a, b, { seed: 1, maxIter: 50, matmul: full.matmul, memoryBudget: budget, residentBytes: () => budget });
  assert.deepEqual(r1.perms, r2.perms);
  assert.ok(full.ks.length > roomy.ks.length, `${full.ks.length} products without a cache, ${roomy.ks.length} with one`);
});
