/**
 * The generalized symmetry (src/core/symmetry) on the ViT fixture test/fixtures/hf/vit-tiny
 * (written by transformers; our forward pass reproduces its logits, engine/families/vit.test.ts):
 * the layout its family declares (pre-LN, patch projection, CLS token and position embeddings
 * writing the stream, classifier after the final LayerNorm), folding keeps the logits on
 * transformers' pixel values, and a random element of the group (orthogonal residual fixing the
 * all-ones direction, head permutations, per-head QK and VO maps, MLP permutations) keeps them.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../../../src/core/checkpoint';
import { readModelConfig } from '../../../../src/core/families';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { applyTransformerGroup, classifierTransformerLayout, foldNorms, randomOrthogonal, randomTransformerGroupElement, SymmetryUnsupported } from '../../../../src/core/symmetry';
import { initBackend } from '../../../../src/engine/backend';
import { buildModel, readTensors } from '../../../../src/engine/compute';
import { testBackend } from '../../helpers/backend';
import { hfFixture } from '../../helpers/hfFixtures';

const WEIGHTS = path.join(hfFixture('vit-tiny'), 'model.safetensors');
const TOLERANCE = 1e-4;
let weights: TensorMap;
let pixels: tf.Tensor4D;

before(async () => {
  await initBackend(testBackend());
  const ckpt = await openCheckpoint(WEIGHTS);
  try {
    weights = await readTensors(ckpt);
  } finally {
    await ckpt.close();
  }
  const ref = await openCheckpoint(path.join(hfFixture('vit-tiny'), 'reference_logits.safetensors'));
  try {
    pixels = tf.tensor4d(await ref.readFloat32('pixel_values'), ref.get('pixel_values')!.shape as [number, number, number, number]);
  } finally {
    await ref.close();
  }
});

function logits(w: TensorMap): Float32Array {
  const model = buildModel(w, readModelConfig(WEIGHTS));
  try {
    return tf.tidy(() => model.forward(pixels).dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const layoutOf = (w: TensorMap) => classifierTransformerLayout(w, 'vit', readModelConfig(WEIGHTS), 'vit-tiny');

describe('ViT (vit-tiny): the generalized symmetry keeps the logits', () => {
  it('its family gives the layout: LayerNorm (centered), no rotary, patch projection, CLS token and position embeddings write the stream', () => {
    const layout = layoutOf(weights);
    assert.equal(layout.arch, 'vit');
    assert.deepEqual([layout.hidden, layout.heads, layout.kvHeads, layout.headDim, layout.blocks.length], [64, 4, 4, 16, 2]);
    assert.equal(layout.centered, true);
    assert.equal(layout.rotary, false);
    assert.deepEqual(layout.inputWriters?.map((w) => w.weight), ['vit.embeddings.patch_embeddings.projection.weight']);
    assert.deepEqual(layout.embeddings, ['vit.embeddings.cls_token', 'vit.embeddings.position_embeddings']);
    assert.equal(layout.head.weight, 'classifier.weight');
  });

  it('folding the LayerNorms keeps the logits (unit gains, zero biases in the blocks)', () => {
    const layout = layoutOf(weights);
    const folded = foldNorms(weights, layout);
    assert.equal(folded.untied, false);
    const diff = maxDiff(logits(weights), logits(folded.tensors));
    assert.ok(diff < TOLERANCE, `folded logits differ by ${diff}`);
    for (const site of layout.blocks.flatMap((b) => [b.attnNorm, b.mlpNorm])) {
      assert.ok(folded.tensors.get(site.gain)!.data.every((g) => g === 1));
      assert.ok(folded.tensors.get(site.bias!)!.data.every((g) => g === 0));
    }
  });

  it('a random element (residual R, head permutations, per-head QK and VO maps, MLP permutations) keeps the logits', () => {
    const folded = foldNorms(weights, layoutOf(weights));
    const base = logits(weights);
    for (const seed of [1, 2]) {
      const g = randomTransformerGroupElement(folded.layout, mulberry32(seed));
      const moved = applyTransformerGroup(folded.tensors, folded.layout, g);
      const diff = maxDiff(base, logits(moved));
      assert.ok(diff < TOLERANCE, `seed ${seed}: logits differ by ${diff}`);
      // Every part of the stream moved: the patch projection, the CLS token, the position embeddings, the classifier's input.
      for (const name of ['vit.embeddings.patch_embeddings.projection.weight', 'vit.embeddings.cls_token', 'vit.embeddings.position_embeddings', 'classifier.weight']) {
        assert.ok(maxDiff(moved.get(name)!.data, folded.tensors.get(name)!.data) > 1e-3, `${name} did not move`);
      }
      assert.ok(g.heads.some((p) => p.some((x, i) => x !== i)), 'the element permutes heads');
    }
  });

  it('a residual map that moves the all-ones direction is refused (LayerNorm centers)', () => {
    const folded = foldNorms(weights, layoutOf(weights));
    assert.throws(
      () => applyTransformerGroup(folded.tensors, folded.layout, { residual: randomOrthogonal(64, mulberry32(3)) }),
      (e: Error) => e instanceof SymmetryUnsupported && /all-ones/.test(e.message),
    );
  });
});
