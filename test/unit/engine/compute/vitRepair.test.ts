/**
 * REPAIR for Vision Transformers (src/engine/compute/vitRepair.ts) on test/fixtures/hf/vit-tiny
 * and a seeded perturbation of it, on seeded random images: at lambda = 0 and 1 the repaired
 * model is the endpoint (loss to 1e-5); at lambda = 0.5 the statistics of every site (each
 * block's MLP intermediate units) of the repaired model are the endpoints' interpolated (mean to
 * 1e-4, std to 1e-3 relative), and the folded weights compute the corrections applied in the pass.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { readModelConfig, type ModelConfig } from '../../../../src/core/families';
import { interpolate } from '../../../../src/core/matching/merge';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import { buildModel, readTensors } from '../../../../src/engine/compute';
import { correctedVitForward, repairVit, vitRepairSites, vitUnitStats } from '../../../../src/engine/compute/vitRepair';
import type { LmUnitStats } from '../../../../src/engine/lm/repair';
import { hfFixture } from '../../helpers/hfFixtures';

const WEIGHTS = path.join(hfFixture('vit-tiny'), 'model.safetensors');
const N = 16;

let a: TensorMap;
let b: TensorMap;
let config: ModelConfig;
let x: tf.Tensor2D;
let labels: tf.Tensor2D;
let sa: LmUnitStats;
let sb: LmUnitStats;

before(async () => {
  await initBackend('wasm');
  const ckpt = await openCheckpoint(WEIGHTS);
  try {
    a = await readTensors(ckpt);
  } finally {
    await ckpt.close();
  }
  config = readModelConfig(WEIGHTS);
  // B: A plus seeded noise of half each tensor's RMS, another network with the same architecture.
  const rand = mulberry32(11);
  b = new Map([...a].map(([name, t]): [string, DenseTensor] => {
    const rms = Math.sqrt(t.data.reduce((s, v) => s + v * v, 0) / Math.max(1, t.data.length)) || 1;
    return [name, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + 0.5 * rms * (2 * rand() - 1) * Math.sqrt(3)) }];
  }));
  const pixels = mulberry32(5);
  x = tf.tensor2d(Float32Array.from({ length: N * 3 * 32 * 32 }, () => 2 * pixels() - 1), [N, 3 * 32 * 32]);
  labels = tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => i % 10), 'int32'), 10).toFloat() as tf.Tensor2D;
  sa = vitUnitStats(a, config, x);
  sb = vitUnitStats(b, config, x);
});

function loss(t: TensorMap): number {
  const model = buildModel(t, config);
  try {
    return tf.tidy(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x)).dataSync()[0]);
  } finally {
    model.dispose();
  }
}

describe('REPAIR for Vision Transformers', () => {
  it('has one site per block, the MLP intermediate units', () => {
    assert.deepEqual(vitRepairSites(a).map((s) => s.shift?.bias), ['vit.encoder.layer.0.intermediate.dense.bias', 'vit.encoder.layer.1.intermediate.dense.bias']);
    assert.deepEqual(sa.map((s) => s.mean.length), [128, 128]);
  });

  it('at λ = 0 and 1 the repaired model is the endpoint', () => {
    for (const [lambda, end] of [[0, a], [1, b]] as const) {
      const { tensors } = repairVit(interpolate(a, b, lambda), lambda, sa, sb, config, x);
      const [got, want] = [loss(tensors), loss(end)];
      assert.ok(Math.abs(got - want) <= 1e-5, `λ = ${lambda}: ${got} vs ${want}`);
    }
  });

  it('at λ = 0.5 every site has the interpolated statistics, and the folded weights compute the correction', () => {
    const theta = interpolate(a, b, 0.5);
    const { tensors, corrections } = repairVit(theta, 0.5, sa, sb, config, x);
    const plain = vitUnitStats(theta, config, x);
    const got = vitUnitStats(tensors, config, x);
    let moved = 0;
    got.forEach((site, i) => {
      for (let j = 0; j < site.mean.length; j++) {
        const mean = 0.5 * (sa[i].mean[j] + sb[i].mean[j]);
        const std = 0.5 * (sa[i].std[j] + sb[i].std[j]);
        assert.ok(Math.abs(site.mean[j] - mean) <= 1e-4, `site ${i} unit ${j}: mean ${site.mean[j]} vs ${mean}`);
        assert.ok(Math.abs(site.std[j] - std) <= 1e-3 * std, `site ${i} unit ${j}: std ${site.std[j]} vs ${std}`);
        moved = Math.max(moved, Math.abs(plain[i].std[j] - std) / std);
      }
    });
    assert.ok(moved > 1e-2, `the interpolated model's statistics differed from the target (by ${moved})`);
    const expected = correctedVitForward(theta, corrections, config);
    const model = buildModel(tensors, config);
    try {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(expected.forward(x), model.forward(x)))).dataSync()[0]);
      assert.ok(diff < 1e-4, `folded vs in-pass logits differ by ${diff}`);
    } finally {
      model.dispose();
      expected.dispose();
    }
  });
});
