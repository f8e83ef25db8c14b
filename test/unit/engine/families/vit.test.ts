/**
 * The ViT family (src/core/families/vit.ts, src/engine/families/vit.ts) on the fixture
 * test/fixtures/hf/vit-tiny (written by transformers, see its SOURCES.md): our forward pass gives
 * transformers' logits for its pixel_values; random elements of the inferred group (residual
 * stream, heads, q/k and v/o dimensions inside each head, MLP units) keep them, a permutation
 * outside the group does not; weight matching and activation matching (on random images: the
 * residual stream, MLP units, heads and the q/k and v/o dimensions inside them) recover a known
 * group element exactly.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BlockAxis, PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig, readModelConfig } from '../../../../src/core/families';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { buildModel, readTensors } from '../../../../src/engine/compute';
import { activationMatchingFromTensors } from '../../../../src/engine/compute/activationMatching';
import { hfFixture } from '../../helpers/hfFixtures';

const DIR = hfFixture('vit-tiny');
const WEIGHTS = path.join(DIR, 'model.safetensors');

let weights: TensorMap;
let spec: PermSpec;
let pixels: tf.Tensor4D;
let want: Float32Array;

before(async () => {
  await initBackend('wasm');
  const ckpt = await openCheckpoint(WEIGHTS);
  try {
    weights = await readTensors(ckpt);
    spec = inferSpec(ckpt.tensors, readHfConfig(ckpt.path)).spec;
  } finally {
    await ckpt.close();
  }
  const ref = await openCheckpoint(path.join(DIR, 'reference_logits.safetensors'));
  try {
    pixels = tf.tensor4d(await ref.readFloat32('pixel_values'), ref.get('pixel_values')!.shape as [number, number, number, number]);
    want = await ref.readFloat32('logits');
  } finally {
    await ref.close();
  }
});

/** Largest |logit difference| from transformers' logits, relative to their scale. */
function logitsError(w: TensorMap): number {
  const model = buildModel(w, readModelConfig(WEIGHTS));
  try {
    const got = tf.tidy(() => model.forward(pixels).dataSync());
    assert.equal(got.length, want.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    return worst / Math.max(1, want.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
  } finally {
    model.dispose();
  }
}

describe('ViT (vit-tiny, transformers 5.18 reference logits)', () => {
  it('the forward pass reproduces the logits to 1e-4, with the model read from config.json', () => {
    const config = readModelConfig(WEIGHTS);
    assert.deepEqual(config, { family: 'vit', heads: 4, eps: 1e-12, activation: 'gelu', inputShape: [3, 32, 32] });
    const model = buildModel(weights, config);
    try {
      assert.equal(model.family, 'vit');
      assert.deepEqual(model.inputShape, [3, 32, 32]);
      assert.equal(model.classes, 10);
      // Flattened images (an .npz of [n, 3072]) are read as N×C×H×W.
      const flat = tf.tidy(() => model.forward(pixels.reshape([2, 3 * 32 * 32])).dataSync());
      const full = tf.tidy(() => model.forward(pixels).dataSync());
      assert.deepEqual(Array.from(flat), Array.from(full));
    } finally {
      model.dispose();
    }
    const err = logitsError(weights);
    assert.ok(err < 1e-4, `logits differ by ${err} (relative)`);
  });

  it('random elements of the inferred group (residual, heads, q/k, v/o, MLP) keep the logits', () => {
    const names = Object.keys(spec.perms);
    for (const suffix of ['.heads', '.qk', '.vo', '.mlp']) assert.equal(names.filter((p) => p.endsWith(suffix)).length, 2, suffix);
    assert.ok(names.includes('P_residual'));
    for (const seed of [1, 2, 3]) {
      const perms = randomPermutations(spec, seed);
      const err = logitsError(applyPermutations(spec, perms, weights));
      assert.ok(err < 1e-4, `seed ${seed}: logits differ by ${err} (relative)`);
    }
  });

  it("permutations outside the group change the logits: q's head dimensions without k's, the stream without the CLS token", () => {
    const q = 'vit.encoder.layer.0.attention.attention.query';
    const qAxis = spec.axes[`${q}.weight`][0] as BlockAxis;
    const parts = [{ split: qAxis.parts[0].split, perms: [qAxis.parts[0].perms[0], 'X_q'] }];
    const forbidden: PermSpec = {
      perms: { ...spec.perms, X_q: 64 },
      axes: { ...spec.axes, [`${q}.weight`]: [{ parts }, 'P_residual'], [`${q}.bias`]: [{ parts }] },
      blocks: { ...spec.blocks, X_q: 4 },
    };
    const perms = { ...randomPermutations(spec, 4), X_q: randomPermutations(forbidden, 4).X_q };
    const allowed = logitsError(applyPermutations(spec, perms, weights));
    const err = logitsError(applyPermutations(forbidden, perms, weights));
    // Random weights attend almost uniformly, so the change is small, but far above rounding.
    assert.ok(err > 2e-4 && err > 100 * allowed, `q without k: ${err} (a group element: ${allowed})`);
    const noCls: PermSpec = { ...spec, axes: { ...spec.axes, 'vit.embeddings.cls_token': [null, null, null] } };
    const stream = logitsError(applyPermutations(noCls, perms, weights));
    assert.ok(stream > 1e-2, `the stream without the CLS token: ${stream}`);
  });

  it('weight matching recovers a random group element exactly', async () => {
    const b = applyPermutations(spec, randomPermutations(spec, 11), weights);
    const r = await weightMatching(spec, weights, b, { seed: 0, maxIter: 50, matmul: jsMatMul });
    const aligned = applyPermutations(spec, r.perms, b);
    for (const [name, t] of weights) assert.deepEqual(Array.from(aligned.get(name)!.data), Array.from(t.data), `\`${name}\` differs`);
    assert.ok(logitsError(aligned) < 1e-4);
  });

  it('activation matching on random images recovers a random group element exactly: stream, heads, q/k, v/o, MLP', async () => {
    const b = applyPermutations(spec, randomPermutations(spec, 12), weights);
    // Uniform noise in [-1, 1) from a fixed LCG: the images need no structure, only variety.
    let state = 7;
    const n = 16;
    const x = Float32Array.from({ length: n * 3 * 32 * 32 }, () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 31 - 1;
    });
    const data = { x, xShape: [n, 3, 32, 32], y: new Int32Array(n), n, classes: 10, source: 'random images' };
    const r = await activationMatchingFromTensors(spec, weights, b, readModelConfig(WEIGHTS), data, { batchSize: 8 });
    assert.deepEqual(r.unobserved, []);
    for (const name of Object.keys(spec.perms)) assert.ok(r.correlation[name].after > 0.999, `${name}: ${JSON.stringify(r.correlation[name])}`);
    const aligned = applyPermutations(spec, r.perms, b);
    for (const [name, t] of weights) assert.deepEqual(Array.from(aligned.get(name)!.data), Array.from(t.data), `\`${name}\` differs`);
  });
});
