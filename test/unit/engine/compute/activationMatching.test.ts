/**
 * Classifier activation matching under a memory budget (src/engine/compute/activationMatching.ts):
 * with a budget that leaves room for a few examples beside what is held, the data is streamed in
 * smaller batches (more of them, seen in the plan and the progress) and the permutations equal
 * the default budget's (the sums only change their order of summation), on an MLP and on
 * the ViT fixture test/fixtures/hf/vit-tiny; a budget not even one example fits is refused in
 * one line (OverBudget).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import type { Dataset } from '../../../../src/core/data';
import { readHfConfig, readModelConfig } from '../../../../src/core/families';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { OVER_BUDGET } from '../../../../src/core/memoryBudget';
import { inferSpec } from '../../../../src/core/permspec';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import { readTensors, type ModelConfig } from '../../../../src/engine/compute';
import { activationMatchingFromTensors } from '../../../../src/engine/compute/activationMatching';
import { EngineError } from '../../../../src/engine/errors';
import { testBackend } from '../../helpers/backend';
import { hfFixture } from '../../helpers/hfFixtures';
import { mlpStateDict, shapesOf, toTensorMap } from '../../helpers/stateDicts';

before(async () => {
  await initBackend(testBackend());
});

/** Uniform noise in [-1, 1) from a fixed LCG. */
function noise(length: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

function dataset(shape: number[], n: number): Dataset {
  return { x: noise(n * shape.reduce((p, s) => p * s, 1), 7), xShape: [n, ...shape], y: new Int32Array(n), n, classes: 10, source: 'random inputs' };
}

/** The default run and one whose budget leaves room for about 3 examples beside what is held. */
async function smallAgainstDefault(spec: PermSpec, a: TensorMap, b: TensorMap, config: ModelConfig, data: Dataset): Promise<void> {
  const big = await activationMatchingFromTensors(spec, a, b, config, data);
  assert.equal(big.plan.batchSize, data.n);
  assert.equal(big.plan.batches, 1);
  assert.ok(big.plan.statisticsBytes > 0 && big.plan.perExampleBytes > 0);
  const messages: string[] = [];
  const budget = Math.floor(big.plan.residentBytes + 4.6 * big.plan.perExampleBytes);
  const small = await activationMatchingFromTensors(spec, a, b, config, data, { memoryBudget: budget, onProgress: (p) => p.message && messages.push(p.message) });
  assert.ok(small.plan.batchSize >= 1 && small.plan.batchSize <= 4, `batch of ${small.plan.batchSize}`);
  assert.equal(small.plan.batches, Math.ceil(data.n / small.plan.batchSize));
  const batches = messages.filter((m) => /^Activation matching: batch \d+ of \d+$/.test(m));
  assert.equal(batches.length, small.plan.batches);
  assert.equal(batches.at(-1), `Activation matching: batch ${small.plan.batches} of ${small.plan.batches}`);
  assert.deepEqual(small.unobserved, big.unobserved);
  for (const [name, p] of Object.entries(big.perms)) assert.deepEqual(Array.from(small.perms[name]), Array.from(p), `${name} differs`);
  // A batch's sums are float32 products (tfjs) added into float64: other batches round them
  // differently, by about 1e-8 here (float32's precision), never by what would change a match.
  for (const [name, c] of Object.entries(big.correlation)) {
    assert.ok(Math.abs(small.correlation[name].before - c.before) < 1e-6 && Math.abs(small.correlation[name].after - c.after) < 1e-6, `${name}: ${JSON.stringify(small.correlation[name])} vs ${JSON.stringify(c)}`);
  }
}

test('an MLP: a small budget streams smaller batches and finds the same permutations', async () => {
  const sd = mlpStateDict({ sizes: [20, 32, 24, 6], seed: 4 });
  const { spec } = inferSpec(shapesOf(sd));
  const a = toTensorMap(sd);
  const b = applyPermutations(spec, randomPermutations(spec, 21), a);
  await smallAgainstDefault(spec, a, b, {}, dataset([20], 64));
});

test('vit-tiny: a small budget streams smaller batches and finds the same stream, heads, q/k, v/o and MLP permutations', async () => {
  const weights = path.join(hfFixture('vit-tiny'), 'model.safetensors');
  const ckpt = await openCheckpoint(weights);
  let a: TensorMap;
  let spec: PermSpec;
  try {
    a = await readTensors(ckpt);
    spec = inferSpec(ckpt.tensors, readHfConfig(ckpt.path)).spec;
  } finally {
    await ckpt.close();
  }
  const b = applyPermutations(spec, randomPermutations(spec, 12), a);
  await smallAgainstDefault(spec, a, b, readModelConfig(weights), dataset([3, 32, 32], 12));
});

test('a budget not even one example fits is refused in one line', async () => {
  const sd = mlpStateDict({ sizes: [20, 32, 24, 6], seed: 4 });
  const { spec } = inferSpec(shapesOf(sd));
  const a = toTensorMap(sd);
  await assert.rejects(activationMatchingFromTensors(spec, a, a, {}, dataset([20], 16), { memoryBudget: 4096 }), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.kind === OVER_BUDGET, String(e));
    assert.ok(!e.message.includes('\n'), e.message);
    assert.match(e.message, /^activation matching: needs .* for the models, the data and the statistics \(running sums: .*, the widest .*\) plus .* per example, over the memory budget of 4.1 kB: /);
    return true;
  });
});
