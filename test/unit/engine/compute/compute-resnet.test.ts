/**
 * ResNet forward passes (src/engine/families/, built through families/build.ts) against the float64 reference of
 * test/unit/helpers/referenceForward.ts: torchvision BasicBlock and Bottleneck nets with a 3x3
 * stem (stride 1, no max pool: nets adapted to 28x28 images) and a 7x7 stem (stride 2 and
 * max pool), one-channel 28x28 inputs, and the losses a `--model` config
 * `{"family": "resnet", "inputShape": [1, 28, 28]}` gives on flattened images.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../../src/engine/backend';
import { buildModel, evaluateModel, loadModel, toBatches } from '../../../../src/engine/compute';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { saveTensors } from '../../../../src/engine/handlers/train';
import { resnetForward } from '../../helpers/referenceForward';
import { resnetStateDict, seededRandom, toTensorMap } from '../../helpers/stateDicts';
import { makeTmpDir } from '../../helpers/tmp';

before(async () => {
  await initBackend('wasm');
});

const SIZE = 28;
const N = 6;
const CLASSES = 10;

interface Case {
  readonly label: string;
  readonly block: 'basic' | 'bottleneck';
  readonly stemKernel: 3 | 7;
}

const CASES: readonly Case[] = [
  { label: 'BasicBlock, 3x3 stem', block: 'basic', stemKernel: 3 },
  { label: 'BasicBlock, 7x7 stem + max pool', block: 'basic', stemKernel: 7 },
  { label: 'Bottleneck, 3x3 stem', block: 'bottleneck', stemKernel: 3 },
  { label: 'Bottleneck, 7x7 stem + max pool', block: 'bottleneck', stemKernel: 7 },
];

function net(c: Case, seed: number) {
  // 3 stages as in the 28x28 net (widths 16/32/64 for BasicBlocks; narrower bottlenecks).
  const widths = c.block === 'basic' ? [16, 32, 64] : [4, 8, 16];
  return resnetStateDict({ block: c.block, layers: [2, 1, 1], widths, stem: widths[0], stemKernel: c.stemKernel, inChannels: 1, numClasses: CLASSES, seed });
}

function images(seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: N * SIZE * SIZE }, () => r());
}

/** Float64 logits of every image and the mean cross-entropy for `labels`. */
function reference(sd: ReturnType<typeof net>, x: Float32Array, labels: Int32Array, smallStem: boolean): { logits: Float64Array[]; loss: number } {
  const w = toTensorMap(sd);
  const logits: Float64Array[] = [];
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const z = resnetForward(w, Float64Array.from(x.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE)), SIZE, smallStem);
    logits.push(z);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    loss += lse - z[labels[i]];
  }
  return { logits, loss: loss / N };
}

function labelsFor(seed: number): Int32Array {
  const r = seededRandom(seed);
  return Int32Array.from({ length: N }, () => Math.floor(r() * CLASSES));
}

for (const c of CASES) {
  test(`resnet forward equals the float64 reference: ${c.label}`, () => {
    const sd = net(c, 11);
    const x = images(5);
    const model = buildModel(toTensorMap(sd), { family: 'resnet', inputShape: [1, SIZE, SIZE] });
    try {
      assert.deepEqual(model.inputShape, [1, SIZE, SIZE]);
      const got = tf.tidy(() => model.forward(tf.tensor4d(x, [N, 1, SIZE, SIZE])).dataSync());
      const want = reference(sd, x, labelsFor(1), c.stemKernel === 3).logits;
      const scale = Math.max(...want.map((z) => Math.max(...z.map(Math.abs))));
      for (let i = 0; i < N; i++) {
        for (let k = 0; k < CLASSES; k++) {
          const d = Math.abs(got[i * CLASSES + k] - want[i][k]);
          assert.ok(d <= 1e-4 * Math.max(1, scale), `${c.label}: image ${i} logit ${k}: ${got[i * CLASSES + k]} vs ${want[i][k]}`);
        }
      }
    } finally {
      model.dispose();
    }
  });
}

test('`--model {"family": "resnet", "inputShape": [1, 28, 28]}` gives the reference losses on flattened 28x28 images', async () => {
  const tmp = await makeTmpDir('rebasin-resnet28-');
  try {
    for (const c of CASES) {
      const sd = net(c, 23);
      const file = tmp.file(`${c.block}-${c.stemKernel}.safetensors`);
      await saveTensors(file, toTensorMap(sd), {});
      const config = tmp.file(`${c.block}-${c.stemKernel}.model.json`);
      writeFileSync(config, JSON.stringify({ family: 'resnet', inputShape: [1, SIZE, SIZE] }));
      const x = images(9);
      const y = labelsFor(3);
      const ckpt = await openCheckpoint(file);
      const model = await loadModel(ckpt, config);
      await ckpt.close();
      // Flattened rows, as .npy or safetensors data often store them: inputShape restores [1, 28, 28].
      const batches = toBatches({ x, xShape: [N, SIZE * SIZE], y, n: N, classes: CLASSES, source: 'test images' }, 4);
      try {
        const { loss } = await evaluateModel(model, batches);
        const want = reference(sd, x, y, c.stemKernel === 3).loss;
        assert.ok(Math.abs(loss - want) <= 1e-4 * Math.max(1, want), `${c.label}: loss ${loss} vs reference ${want}`);
      } finally {
        batches.dispose();
        model.dispose();
      }
    }
  } finally {
    await tmp.remove();
  }
});
