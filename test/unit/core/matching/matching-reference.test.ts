/**
 * Weight matching against a plain float64 implementation of Algorithm 1 (helpers/referenceMatching):
 * same spec, same seeded order of permutations, same stopping rule. Pass rule (issue 11): on each
 * family and pairing, the mean objective over the seeds is within 0.3% of the reference's mean,
 * and no seed is more than 1% below the reference's objective for it.
 *
 * Pairs are "trained-like": layers of unequal scale (a trained network's classifier and
 * embeddings are not at their He-init scale), either two independent models or B = a permuted
 * copy of A plus noise. BatchNorm running statistics are in the models but not in the objective
 * (see `isRunningStatistic`), so the reference gets the spec without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor, PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { applyPermutations, invertPermutation, randomPermutations } from '../../../../src/core/matching/permute';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { isRunningStatistic, weightMatching } from '../../../../src/core/matching/weightMatching';
import { inferSpec } from '../../../../src/core/permspec/infer';
import type { HfConfig } from '../../../../src/core/families';
import { referenceObjective, referenceWeightMatching } from '../../helpers/referenceMatching';
import * as sd from '../../helpers/stateDicts';

const SEEDS = [0, 1, 2, 3, 4];
const MAX_ITER = 100;

/**
 * Each tensor scaled by a seeded factor in [0.3, 3), the classifier by 6 (trained heads grow):
 * layers of unequal weight in the objective.
 */
function unevenScales(tensors: readonly sd.StateTensor[], seed: number): Map<string, DenseTensor> {
  const r = mulberry32(seed);
  return new Map(tensors.map((t) => {
    const f = /^(fc|linear|lm_head|classifier\.6)\./.test(t.name) ? 6 : 0.3 + 2.7 * r();
    return [t.name, { shape: t.shape, data: t.data.map((v) => v * f) }];
  }));
}

/** B = A permuted by random permutations, plus uniform noise of `noise` times each value's size. */
function noisyPermutedCopy(spec: PermSpec, a: TensorMap, seed: number, noise: number): Map<string, DenseTensor> {
  const r = mulberry32(seed);
  const out = new Map<string, DenseTensor>();
  for (const [name, t] of applyPermutations(spec, randomPermutations(spec, seed), a)) {
    out.set(name, { shape: t.shape, data: t.data.map((v) => v + noise * (2 * r() - 1) * (Math.abs(v) + 0.05)) });
  }
  return out;
}

function withoutRunningStatistics(spec: PermSpec): PermSpec {
  return { perms: spec.perms, axes: Object.fromEntries(Object.entries(spec.axes).filter(([t]) => !isRunningStatistic(t))) };
}

const FAMILIES: Record<string, (seed: number) => sd.StateTensor[]> = {
  'mlp': (seed) => sd.mlpStateDict({ sizes: [20, 32, 24, 10], seed }),
  'vgg (conv + BN + classifier)': (seed) => sd.vggStateDict({ cfg: [8, 'M', 16, 16, 'M'], spatial: 1, hidden: [24], numClasses: 10, seed }),
  'resnet, 7x7 stem, BasicBlocks, downsample': (seed) => sd.resnetStateDict({ block: 'basic', layers: [2, 2], widths: [8, 16], stem: 8, numClasses: 10, seed }),
  'resnet, 7x7 stem, Bottlenecks, downsample': (seed) => sd.resnetStateDict({ block: 'bottleneck', layers: [1, 1], widths: [4, 8], stem: 8, numClasses: 10, seed }),
  'resnet, 3x3 stem, shortcut convs (CIFAR)': (seed) => sd.cifarResnetStateDict({ depth: 8, widths: [8, 16, 16], shortcut: 'B', seed }),
  'gpt-2, 4 layers': (seed) => sd.gpt2StateDict({ layers: 4, dModel: 16, vocab: 40, positions: 8, seed }),
  'llama naming, grouped kv': (seed) => sd.llamaStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 40, seed }),
};

/**
 * The part of the objective no permutation can change (tensors with no permuted axis, such as
 * `num_batches_tracked`): left out of the comparison so that it does not dilute the gap.
 */
function fixedPart(spec: PermSpec, a: TensorMap, b: TensorMap): number {
  let s = 0;
  for (const [t, axes] of Object.entries(spec.axes)) {
    if (axes.some((p) => p !== null)) continue;
    const x = a.get(t)!.data, y = b.get(t)!.data;
    for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  }
  return s;
}

function checkAgainstReference(family: string, pairing: string, spec: PermSpec, ours: number[], reference: number[]): void {
  const mean = (x: number[]): number => x.reduce((s, v) => s + v, 0) / x.length;
  const gap = 1 - mean(ours) / mean(reference);
  assert.ok(gap <= 0.003, `${family}, ${pairing}: mean objective ${mean(ours)} is ${(100 * gap).toFixed(2)}% below the reference's ${mean(reference)}`);
  ours.forEach((o, k) => {
    assert.ok(o >= reference[k] - 0.01 * Math.abs(reference[k]),
      `${family}, ${pairing}, seed ${SEEDS[k]}: objective ${o} is more than 1% below the reference's ${reference[k]} (${Object.keys(spec.perms).length} permutations)`);
  });
}

/** Head counts of the transformer families (what config.json would say). */
const HEADS: Record<string, HfConfig | undefined> = { 'gpt-2, 4 layers': { heads: 4 }, 'llama naming, grouped kv': { heads: 4, kvHeads: 2 } };

for (const [family, build] of Object.entries(FAMILIES)) {
  test(`weight matching reaches the reference objective: ${family}`, async () => {
    const ta = build(11);
    const spec = inferSpec(sd.shapesOf(ta), HEADS[family]).spec;
    const refSpec = withoutRunningStatistics(spec);
    const a = unevenScales(ta, 101);
    const pairings: [string, TensorMap][] = [
      ['independent models', unevenScales(build(12), 101)],
      ['B = noisy permuted copy of A', noisyPermutedCopy(spec, a, 7, 0.8)],
    ];
    for (const [pairing, b] of pairings) {
      const ours: number[] = [];
      const reference: number[] = [];
      for (const seed of SEEDS) {
        const r = await weightMatching(spec, a, b, { seed, maxIter: MAX_ITER, matmul: jsMatMul });
        // Our reported objective is the reference's objective of our permutations, less the
        // tensors no permutation touches (reported apart).
        const check = referenceObjective(refSpec, a, b, r.perms);
        const fixed = fixedPart(refSpec, a, b);
        assert.ok(Math.abs(r.objectiveFixed - fixed) <= 1e-9 * Math.abs(fixed) + 1e-9, `${family}: fixed part ${r.objectiveFixed}, recomputed ${fixed}`);
        assert.ok(Math.abs(r.objectiveAfter + fixed - check) <= 1e-9 * Math.abs(check) + 1e-9, `${family}: reported ${r.objectiveAfter} + ${fixed}, recomputed ${check}`);
        ours.push(r.objectiveAfter);
        reference.push(referenceWeightMatching(refSpec, a, b, { seed, maxIter: MAX_ITER }).objective - fixed);
      }
      checkAgainstReference(family, pairing, spec, ours, reference);
    }
  });
}

test('BatchNorm running statistics are permuted with their channel but left out of the objective', async () => {
  const tensors = sd.resnetStateDict({ block: 'basic', layers: [1, 1], widths: [8, 16], stem: 8, numClasses: 10, seed: 21 });
  const spec = inferSpec(sd.shapesOf(tensors)).spec;
  assert.ok(Object.keys(spec.axes).some(isRunningStatistic), 'the spec permutes running statistics');
  const a = sd.toTensorMap(tensors);
  const b = sd.toTensorMap(sd.resnetStateDict({ block: 'basic', layers: [1, 1], widths: [8, 16], stem: 8, numClasses: 10, seed: 22 }));
  // Blow the running statistics up: if they were in the objective, they would decide the matching.
  const loud = (m: TensorMap, seed: number): Map<string, DenseTensor> => {
    const r = mulberry32(seed);
    return new Map([...m].map(([k, t]) => [k, isRunningStatistic(k) ? { shape: t.shape, data: t.data.map(() => 1e3 * (1 + r())) } : t]));
  };
  const plain = await weightMatching(spec, a, b, { seed: 3, maxIter: MAX_ITER, matmul: jsMatMul });
  const loudRun = await weightMatching(spec, loud(a, 1), loud(b, 2), { seed: 3, maxIter: MAX_ITER, matmul: jsMatMul });
  for (const p of Object.keys(spec.perms)) assert.deepEqual(Array.from(loudRun.perms[p]), Array.from(plain.perms[p]), p);
  assert.equal(loudRun.objectiveAfter, plain.objectiveAfter);
  // π(B) still carries each channel's statistics with it.
  const permuted = applyPermutations(spec, plain.perms, b);
  const name = 'layer1.0.bn1.running_var';
  const perm = plain.perms[spec.axes[name][0] as string];
  const before = b.get(name)!.data;
  assert.deepEqual(Array.from(permuted.get(name)!.data), Array.from(perm, (j) => before[j]));
});

test('a Llama-shaped pair: a known permutation is recovered exactly with the contribution cache uncapped, capped and off', async () => {
  // Issue 14: at TinyLlama size the cached contributions passed their 1 GiB cap and the residual
  // permutation, which the embeddings alone determine, was never recovered. Same shape, small.
  const tensors = sd.llamaStateDict({ layers: 3, dModel: 48, heads: 4, kvHeads: 2, intermediate: 128, vocab: 200, seed: 31 });
  const spec = inferSpec(sd.shapesOf(tensors), { heads: 4, kvHeads: 2 }).spec;
  const a = sd.toTensorMap(tensors);
  const applied = randomPermutations(spec, 17);
  const b = applyPermutations(spec, applied, a);
  // One MLP contribution is 48 x 48 float32 plus its B operand of 128 x 48: a cap of 40 kB holds a few.
  for (const cacheBytes of [undefined, 40_000, 0]) {
    const r = await weightMatching(spec, a, b, { seed: 5, maxIter: MAX_ITER, matmul: jsMatMul, cacheBytes });
    // Whole-axis permutations come back as the inverse; head permutations compose by blocks
    // (block g of A's order picks its inner permutation), so they are checked through the tensors below.
    for (const p of Object.keys(spec.perms).filter((q) => q === 'P_residual' || q.endsWith('.mlp'))) {
      const inverse = invertPermutation(applied[p]);
      assert.deepEqual(Array.from(r.perms[p]), Array.from(inverse), `cache ${cacheBytes ?? 'default'}: ${p} recovered`);
    }
    const aligned = applyPermutations(spec, r.perms, b);
    for (const [name, t] of a) assert.deepEqual(aligned.get(name)!.data, t.data, `cache ${cacheBytes ?? 'default'}: ${name} equals A's`);
  }
});
