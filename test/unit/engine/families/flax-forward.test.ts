/**
 * Flax checkpoints run through the PyTorch-layout forward passes: the paper's MLP saved by Flax
 * (test/fixtures/formats/mlp.msgpack) gives the same logits as the same weights in mlp.safetensors.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openCheckpoint } from '../../../../src/core/formats';
import { initBackend } from '../../../../src/engine/backend';
import { detectModelFamily, loadModel, readTensors } from '../../../../src/engine/compute';
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
