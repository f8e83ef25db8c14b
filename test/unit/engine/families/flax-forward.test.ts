/**
 * Flax checkpoints run through the PyTorch-layout forward passes: the paper's MLP saved by Flax
 * (test/fixtures/formats/mlp.msgpack) gives the same logits as the same weights in mlp.safetensors;
 * the paper's LayerNorm ResNet, which no forward pass here runs, is refused rather than misread.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openCheckpoint } from '../../../../src/core/formats';
import { initBackend } from '../../../../src/engine/backend';
import { ModelError, buildModel, detectModelFamily, loadModel, readTensors } from '../../../../src/engine/compute';
import { testBackend } from '../../helpers/backend';

const FORMATS = path.join(__dirname, '..', '..', '..', 'fixtures', 'formats');

before(async () => {
  await initBackend(testBackend());
});

async function logits(file: string, x: Float32Array): Promise<{ family: string; values: Float32Array }> {
  const ck = await openCheckpoint(file);
  try {
    const family = detectModelFamily(await readTensors(ck));
    const model = await loadModel(ck);
    try {
      const out = tf.tidy(() => model.forward(tf.tensor2d(x, [4, 20])));
      const values = (await out.data()) as Float32Array;
      out.dispose();
      return { family, values };
    } finally {
      model.dispose();
    }
  } finally {
    await ck.close();
  }
}

test('mlp.msgpack and mlp.safetensors: the same family and the same logits', async () => {
  const x = Float32Array.from({ length: 80 }, (_, i) => Math.sin(i * 0.37));
  const flax = await logits(path.join(FORMATS, 'mlp.msgpack'), x);
  const torch = await logits(path.join(FORMATS, 'mlp.safetensors'), x);
  assert.equal(flax.family, 'mlp');
  assert.equal(torch.family, 'mlp');
  assert.equal(flax.values.length, 40);
  for (let i = 0; i < 40; i++) assert.ok(Math.abs(flax.values[i] - torch.values[i]) <= 1e-5 * Math.max(1, Math.abs(torch.values[i])), `logit ${i}: ${flax.values[i]} vs ${torch.values[i]}`);
});

test("the paper's Flax ResNet-20 (LayerNorm) is refused by the forward passes, in one line", () => {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[]): void => void tensors.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1) });
  add('conv1/kernel', [3, 3, 3, 4]);
  add('norm1/scale', [4]);
  add('norm1/bias', [4]);
  add('blockgroups_0/blocks_0/conv1/kernel', [3, 3, 4, 4]);
  add('blockgroups_0/blocks_0/norm1/scale', [4]);
  add('blockgroups_0/blocks_0/conv2/kernel', [3, 3, 4, 4]);
  add('blockgroups_0/blocks_0/norm2/scale', [4]);
  add('dense/kernel', [4, 3]);
  add('dense/bias', [3]);
  assert.throws(() => buildModel(tensors), (e: unknown) => e instanceof ModelError && e.kind === 'Unsupported' && /no forward pass here: weight matching works/.test(e.message) && !e.message.includes('\n'));
});
