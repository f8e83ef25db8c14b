/**
 * A ResNet barrier with BatchNorm reset on 28x28 images runs within its memory budget: the
 * barrier job (run in this thread, as a worker runs a `barrier` request sent to it) plans its
 * evaluation batches from the activation bytes per example, so the wasm heap stays under the
 * budget where the fixed batch of 2000 (the whole data set here) would need several times more.
 * Also: the job streams every curve point with "Loss curve: k of n points".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { CurvePoint, Progress } from '../../../src/core/checkpoint';
import { encodeFromFloat32, writeSafetensors } from '../../../src/core/safetensors';
import { initBackend } from '../../../src/engine/backend';
import { dispatch } from '../../../src/engine/dispatch';
import type { AlignResult, BarrierResult } from '../../../src/engine/protocol';
import { cifarResnetStateDict, seededRandom, type StateTensor } from '../helpers/stateDicts';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
const N = 240;

async function writeState(file: string, tensors: readonly StateTensor[]): Promise<void> {
  await writeSafetensors(file, tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })));
}

/** Bytes of the wasm backend's heap (a wasm memory only grows: this is the peak so far). */
function wasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  const heap = backend.wasm?.HEAPU8;
  assert.ok(heap, 'the wasm backend exposes its heap');
  return heap.buffer.byteLength;
}

before(async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  tmp = await makeTmpDir('rebasin-barrier-memory-');
  // CIFAR-style ResNet-20 (3 stages of 3 BasicBlocks, widths 16/32/64, conv shortcuts, BatchNorm) on 3x28x28 inputs.
  for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
    await writeState(tmp.file(`${name}.safetensors`), cifarResnetStateDict({ depth: 20, widths: [16, 32, 64], shortcut: 'B', numClasses: 10, seed }));
  }
  writeFileSync(tmp.file('model.json'), JSON.stringify({ family: 'resnet-cifar', inputShape: [3, 28, 28] }));
  const rand = seededRandom(7);
  const x = Float32Array.from({ length: N * 3 * 28 * 28 }, () => rand());
  const y = new BigInt64Array(N).map(() => BigInt(Math.floor(rand() * 10)));
  await writeSafetensors(tmp.file('data.safetensors'), [
    { name: 'x', dtype: 'F32', shape: [N, 3, 28, 28], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [N], read: async () => new Uint8Array(y.buffer) },
  ]);
});
after(async () => {
  await tmp.remove();
});

test('a ResNet barrier with BatchNorm reset plans its batches under the memory budget and streams its points', async () => {
  const budget = 160 * 2 ** 20;
  const quiet = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
  // The alignment first (its equivalence check runs 64 examples at once, outside this plan); the barrier gets its permutations.
  const aligned = (await dispatch({ kind: 'align', a: tmp.file('a.safetensors'), b: tmp.file('b.safetensors'), method: 'weight', seed: 0, maxIter: 20 }, quiet)) as AlignResult;
  const heapBefore = wasmHeapBytes();
  const progress: Progress[] = [];
  const r = (await dispatch(
    {
      kind: 'barrier',
      a: tmp.file('a.safetensors'),
      b: tmp.file('b.safetensors'),
      data: { path: tmp.file('data.safetensors') },
      model: tmp.file('model.json'),
      steps: 3,
      align: true,
      perms: aligned.perms,
      seed: 0,
      maxIter: 20,
      resetBatchNorm: true,
      memoryBudget: budget,
    },
    { ...quiet, onProgress: (p) => progress.push(p) },
  )) as BarrierResult;

  const plan = r.evaluation;
  assert.ok(plan, 'the result carries the evaluation plan');
  // Activations of this net on one 28x28 example: about a megabyte or more (16 channels x 28 x 28 floats per tensor, ~20 tensors).
  assert.ok(plan.activationBytesPerExample > 500_000, `measured ${plan.activationBytesPerExample} bytes per example`);
  assert.ok(plan.batchSize >= 1 && plan.batchSize < N, `batch ${plan.batchSize} is planned below the data set's ${N}`);
  assert.ok(plan.batchSize * plan.activationBytesPerExample < budget, 'a batch of activations fits the budget');
  assert.deepEqual(plan.batchNormReset, { split: 'train', examples: N, batchSize: Math.min(500, plan.batchSize) });
  // Which data the losses are over (the panel shows it under the chart).
  assert.deepEqual(plan.data, { source: tmp.file('data.safetensors'), split: 'test', examples: N });
  // The fixed batch would have held N examples of activations at once; the heap stayed within the budget.
  const grown = wasmHeapBytes() - heapBefore;
  assert.ok(N * plan.activationBytesPerExample > budget, 'the unplanned batch would not fit the budget');
  assert.ok(grown <= budget, `wasm heap grew by ${(grown / 2 ** 20).toFixed(0)} MB, budget ${budget / 2 ** 20} MB`);

  // Results: both paths, finite, the aligned one from this run's weight matching.
  assert.deepEqual(r.lambdas, [0, 0.5, 1]);
  assert.deepEqual(r.alignedFrom, { method: 'weight', source: 'permutations' });
  assert.equal(r.align, undefined, 'nothing was aligned again');
  for (const path of [r.naive, r.aligned!]) assert.ok(path.loss.every(Number.isFinite) && path.acc.every((v) => v >= 0 && v <= 1));
  assert.equal(r.naive.loss[0], r.aligned!.loss[0], 'both paths start at A');

  // Every point was streamed once, with its path, and the progress text counts them.
  const points: CurvePoint[] = progress.flatMap((p) => (p.point ? [p.point] : []));
  assert.equal(points.length, 6);
  for (const [name, metrics] of [['naive', r.naive], ['aligned', r.aligned!]] as const) {
    const mine = points.filter((p) => p.path === name).sort((u, v) => u.lambda - v.lambda);
    assert.deepEqual(mine.map((p) => p.lambda), r.lambdas);
    assert.deepEqual(mine.map((p) => p.loss), metrics.loss);
    assert.ok(mine.every((p) => p.split === 'test'));
  }
  const texts = progress.map((p) => p.message ?? '');
  assert.ok(texts.includes('Loss curve: 6 of 6 points'), texts.join(' | '));
  const fractions = progress.flatMap((p) => (p.fraction === undefined ? [] : [p.fraction]));
  assert.ok(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])), 'the fraction only grows');
});

test('a memory budget too small for one example is refused in one line naming the checkpoint', async () => {
  await assert.rejects(
    dispatch(
      {
        kind: 'evaluatePath',
        a: tmp.file('a.safetensors'),
        b: tmp.file('b.safetensors'),
        lambdas: [0.5],
        data: { path: tmp.file('data.safetensors') },
        model: tmp.file('model.json'),
        memoryBudget: 2 * 2 ** 20,
      },
      { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined },
    ),
    (e: Error & { kind?: string }) => e.kind === 'OverBudget' && /b\.safetensors/.test(e.message) && !e.message.includes('\n'),
  );
});
