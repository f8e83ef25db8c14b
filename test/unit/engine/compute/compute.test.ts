/**
 * Forward passes (src/engine/families/, built through families/build.ts): an MLP against a plain-TS forward pass, conv
 * padding against a direct PyTorch-semantics convolution, and every conv family keeping its
 * function under a random permutation of its inferred spec (the spec-inference correctness
 * test for conv nets), the equivalence check failing on a wrong spec, and BatchNorm reset.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { PermSpec } from '../../../../src/core/checkpoint';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { testBackend } from '../../helpers/backend';
import { buildModel, checkPermutedEquivalence, resetBatchNorm, toBatches, type ModelConfig } from '../../../../src/engine/compute';
import { conv } from '../../../../src/engine/compute/layers';
import { cifarResnetStateDict, mlpStateDict, resnetStateDict, seededRandom, shapesOf, toTensorMap, vggStateDict, type StateTensor } from '../../helpers/stateDicts';

before(async () => {
  await initBackend(testBackend());
});

function randomInput(shape: number[], seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r());
}

test('mlp forward equals a plain TypeScript forward pass (PyTorch Linear: x W^T + b, ReLU between)', () => {
  for (const naming of ['layers', 'fc', 'sequential', 'model.fc'] as const) {
    const sizes = [12, 16, 8, 5];
    const sd = mlpStateDict({ sizes, naming, seed: 7 });
    const model = buildModel(toTensorMap(sd));
    assert.equal(model.family, 'mlp');
    assert.deepEqual(model.inputShape, [12]);
    const n = 6;
    const x = randomInput([n, 12], 3);
    const got = tf.tidy(() => model.forward(tf.tensor2d(x, [n, 12])).dataSync());
    model.dispose();
    const weights = sd.filter((t) => t.name.endsWith('weight'));
    const biases = sd.filter((t) => t.name.endsWith('bias'));
    let h = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * 12, (i + 1) * 12)));
    weights.forEach((w, l) => {
      const [out, inp] = w.shape;
      h = h.map((row) =>
        Array.from({ length: out }, (_, o) => {
          let s = biases[l].data[o];
          for (let k = 0; k < inp; k++) s += row[k] * w.data[o * inp + k];
          return l < weights.length - 1 ? Math.max(0, s) : s;
        }),
      );
    });
    const want = h.flat();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `${naming}: logit ${i} ${got[i]} vs ${want[i]}`);
  }
});

test('conv with stride 2 pads symmetrically like PyTorch (not tfjs "same")', () => {
  const [c, h, w, o, k] = [2, 6, 6, 3, 3];
  const x = randomInput([1, c, h, w], 1);
  const wt = randomInput([o, c, k, k], 2);
  const got = tf.tidy(() => {
    const xt = tf.transpose(tf.tensor4d(x, [1, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    const wk = tf.transpose(tf.tensor4d(wt, [o, c, k, k]), [2, 3, 1, 0]) as tf.Tensor4D;
    return tf.transpose(conv(xt, wk, undefined, 2, 1), [0, 3, 1, 2]).dataSync();
  });
  const oh = Math.floor((h + 2 - k) / 2) + 1;
  for (let oc = 0; oc < o; oc++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < oh; j++) {
        let s = 0;
        for (let ic = 0; ic < c; ic++)
          for (let di = 0; di < k; di++)
            for (let dj = 0; dj < k; dj++) {
              const yi = i * 2 - 1 + di;
              const xj = j * 2 - 1 + dj;
              if (yi < 0 || xj < 0 || yi >= h || xj >= w) continue;
              s += x[(ic * h + yi) * w + xj] * wt[((oc * c + ic) * k + di) * k + dj];
            }
        const g = got[(oc * oh + i) * oh + j];
        assert.ok(Math.abs(g - s) < 1e-4, `conv output [${oc},${i},${j}]: ${g} vs ${s}`);
      }
});

/** Permutes the state dict by a random permutation of its inferred spec and checks B and pi(B) agree. */
function assertPermutationInvariant(label: string, sd: StateTensor[], config: ModelConfig, expectFamily: string): void {
  const inferred = inferSpec(shapesOf(sd));
  assert.equal(inferred.family, expectFamily, `${label}: inferred family`);
  const tensors = toTensorMap(sd);
  const perms = randomPermutations(inferred.spec, 11);
  const permuted = applyPermutations(inferred.spec, perms, tensors);
  const report = checkPermutedEquivalence(tensors, permuted, config);
  assert.ok(report.ok, `${label}: permuting by the inferred spec changed the function: ${report.message} (rel ${report.relDiff})`);
  assert.equal(report.batch, 'random');
  // Sanity: the permutation really moved weights (otherwise the test proves nothing).
  const moved = [...tensors].some(([n, t]) => permuted.get(n)!.data.some((v, i) => v !== t.data[i]));
  assert.ok(moved, `${label}: the random permutation moved nothing`);
}

test('vgg-style cnn keeps its function under a random permutation of its inferred spec', () => {
  const cfg = [8, 'M', 16, 16, 'M'] as const;
  const sd = vggStateDict({ cfg: [...cfg], hidden: [24], numClasses: 10, spatial: 4, inChannels: 3 });
  assertPermutationInvariant('vgg', sd, { inputShape: [3, 16, 16], layout: [...cfg] }, 'vgg');
  // Without a layout the head is reached through adaptive pooling; still a function of the weights.
  assertPermutationInvariant('vgg (no layout)', sd, { inputShape: [3, 16, 16] }, 'vgg');
});

test('cifar resnet-20 (option B and option A shortcuts) keeps its function under its inferred spec', () => {
  assertPermutationInvariant('resnet-20 B', cifarResnetStateDict({ shortcut: 'B', widths: [4, 8, 16] }), { inputShape: [3, 16, 16] }, 'resnet-cifar');
  assertPermutationInvariant('resnet-20 A', cifarResnetStateDict({ shortcut: 'A', widths: [4, 8, 16] }), { inputShape: [3, 16, 16] }, 'resnet-cifar');
});

test('torchvision resnet-18 and a bottleneck resnet keep their function under their inferred spec', () => {
  assertPermutationInvariant('resnet-18', resnetStateDict({ block: 'basic', layers: [2, 2, 2, 2], widths: [4, 8, 8, 16], numClasses: 10 }), { inputShape: [3, 32, 32] }, 'resnet');
  assertPermutationInvariant('resnet-50-like', resnetStateDict({ block: 'bottleneck', layers: [1, 2, 1, 1], widths: [4, 4, 8, 8], numClasses: 10 }), { inputShape: [3, 32, 32] }, 'resnet');
});

test('equivalence check fails, with a cause, for a spec that misses an axis', () => {
  const sd = mlpStateDict({ sizes: [10, 8, 8, 4], seed: 3 });
  const tensors = toTensorMap(sd);
  const { spec } = inferSpec(shapesOf(sd));
  // Drop the permutation on layers.1.weight's input axis: layer 0's outputs move but layer 1 does not follow.
  const wrong: PermSpec = { perms: spec.perms, axes: { ...spec.axes, 'layers.1.weight': [spec.axes['layers.1.weight'][0], null] } };
  const perms = randomPermutations(spec, 5);
  const good = checkPermutedEquivalence(tensors, applyPermutations(spec, perms, tensors), {});
  assert.ok(good.ok, good.message);
  assert.ok(good.relDiff <= 1e-4);
  const bad = checkPermutedEquivalence(tensors, applyPermutations(wrong, perms, tensors), {});
  assert.equal(bad.ok, false);
  assert.ok(bad.relDiff > 1e-3);
  assert.match(bad.message ?? '', /spec does not match the architecture/);
});

test('batchnorm reset: recomputed statistics make eval mode reproduce train-mode outputs', async () => {
  const sd = vggStateDict({ cfg: [6, 'M', 8, 'M'], hidden: [12], numClasses: 5, spatial: 2 });
  const model = buildModel(toTensorMap(sd), { inputShape: [3, 8, 8], layout: [6, 'M', 8, 'M'] });
  assert.equal(model.batchNormLayers.length, 2);
  const n = 64;
  const data = { x: randomInput([n, 3, 8, 8], 9), xShape: [n, 3, 8, 8], y: new Int32Array(n), n, classes: 5, source: 'random' };
  const batches = toBatches(data, n);
  const [evalBefore, trainMode] = tf.tidy(() => [model.forward(batches.xs[0]).dataSync(), model.forward(batches.xs[0], { batchNorm: 'batch' }).dataSync()]);
  await resetBatchNorm(model, batches);
  const evalAfter = tf.tidy(() => model.forward(batches.xs[0]).dataSync());
  const dist = (a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
  // Running variance is the unbiased one, so eval differs from train mode by a factor sqrt(m/(m-1)) only.
  assert.ok(dist(evalAfter, trainMode) < 0.05 * Math.max(...Array.from(trainMode, Math.abs)), `after reset: ${dist(evalAfter, trainMode)}`);
  assert.ok(dist(evalBefore, trainMode) > 4 * dist(evalAfter, trainMode), 'the reset changed nothing');
  model.dispose();
  batches.dispose();
});

test('activation matching recovers a known permutation of an MLP, a VGG, a ResNet-20 and a ResNet-18', async () => {
  const { activationMatchingFromTensors } = await import('../../../../src/engine/compute');
  const cases: [string, StateTensor[], ModelConfig, number[]][] = [
    ['mlp', mlpStateDict({ sizes: [20, 32, 24, 6], seed: 4 }), {}, [20]],
    ['vgg', vggStateDict({ cfg: [8, 'M', 12, 'M'], hidden: [16], numClasses: 5, spatial: 2 }), { inputShape: [3, 8, 8], layout: [8, 'M', 12, 'M'] }, [3, 8, 8]],
    ['resnet-20', cifarResnetStateDict({ shortcut: 'B', widths: [4, 8, 8] }), { inputShape: [3, 8, 8] }, [3, 8, 8]],
    ['resnet-18', resnetStateDict({ block: 'basic', layers: [1, 1, 1, 1], widths: [4, 8, 8, 8], numClasses: 5 }), { inputShape: [3, 32, 32] }, [3, 32, 32]],
  ];
  for (const [label, sd, config, shape] of cases) {
    const { spec } = inferSpec(shapesOf(sd));
    const a = toTensorMap(sd);
    const sigma = randomPermutations(spec, 21);
    const b = applyPermutations(spec, sigma, a);
    const n = 256;
    const data = { x: Float32Array.from(randomInput([n, ...shape], 5), (v) => 2 * v - 1), xShape: [n, ...shape], y: new Int32Array(n), n, classes: 1, source: 'random' };
    const r = await activationMatchingFromTensors(spec, a, b, config, data, { batchSize: 64 });
    let right = 0;
    let total = 0;
    for (const [p, perm] of Object.entries(r.perms)) {
      if (r.unobserved.includes(p)) continue;
      // b = take(a, sigma): unit sigma[j] of A sits at j in B, so the matching should send i -> j with sigma[j] = i.
      for (let j = 0; j < perm.length; j++) {
        total++;
        if (perm[sigma[p][j]] === j) right++;
      }
    }
    assert.ok(total > 0, `${label}: nothing observed`);
    // Units dead on every input (ReLU) have no correlation to go by; everything else must be recovered.
    assert.ok(right / total > 0.9, `${label}: recovered ${right}/${total} units`);
  }
});

test('evaluatePath on a BatchNorm conv net: model config beside the checkpoint, perms, and BatchNorm reset', async () => {
  const { writeFileSync } = await import('node:fs');
  const { writeSafetensors } = await import('../../../../src/core/safetensors');
  const { saveTensors } = await import('../../../../src/engine/handlers/train');
  const { evaluatePathHandler } = await import('../../../../src/engine/handlers/evaluatePath');
  const { makeTmpDir } = await import('../../helpers/tmp');
  const tmp = await makeTmpDir('rebasin-evalpath-');
  try {
    const cfg: (number | 'M')[] = [6, 'M', 8, 'M'];
    const sdA = vggStateDict({ cfg, hidden: [12], numClasses: 4, spatial: 2, seed: 1 });
    const sdB = vggStateDict({ cfg, hidden: [12], numClasses: 4, spatial: 2, seed: 2 });
    const [fa, fb] = [tmp.file('a.safetensors'), tmp.file('b.safetensors')];
    await saveTensors(fa, toTensorMap(sdA), {});
    await saveTensors(fb, toTensorMap(sdB), {});
    writeFileSync(`${fa}.rebasin.json`, JSON.stringify({ family: 'vgg', inputShape: [3, 8, 8], layout: cfg }));
    const n = 96;
    const x = randomInput([n, 3, 8, 8], 4);
    const y = Float32Array.from({ length: n }, (_, i) => i % 4);
    const data = tmp.file('data.safetensors');
    await writeSafetensors(data, [
      { name: 'x_train', dtype: 'F32', shape: [n, 3, 8, 8], read: async () => new Uint8Array(x.buffer) },
      { name: 'y_train', dtype: 'F32', shape: [n], read: async () => new Uint8Array(y.buffer) },
      { name: 'x_test', dtype: 'F32', shape: [n, 3, 8, 8], read: async () => new Uint8Array(x.buffer) },
      { name: 'y_test', dtype: 'F32', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
    const ctx = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
    const base = { kind: 'evaluatePath' as const, a: fa, b: fb, lambdas: [0, 0.5, 1], data: { path: data } };
    const plain = await evaluatePathHandler(base, ctx);
    // At lambda 0 the model is A: its loss must equal A's own forward pass.
    const modelA = buildModel(toTensorMap(sdA), { inputShape: [3, 8, 8], layout: cfg });
    const batches = toBatches({ x, xShape: [n, 3, 8, 8], y: Int32Array.from(y), n, classes: 4, source: 'x' }, n);
    const { evaluateModel } = await import('../../../../src/engine/compute');
    const lossA = (await evaluateModel(modelA, batches)).loss;
    modelA.dispose();
    batches.dispose();
    assert.ok(Math.abs(plain.loss[0] - lossA) < 1e-5, `${plain.loss[0]} vs ${lossA}`);
    // Permuting B by its inferred spec changes nothing at lambda 1.
    const { spec } = inferSpec(shapesOf(sdB));
    const perms = Object.fromEntries(Object.entries(randomPermutations(spec, 3)).map(([k, v]) => [k, Array.from(v)]));
    const permuted = await evaluatePathHandler({ ...base, perms }, ctx);
    assert.ok(Math.abs(permuted.loss[2] - plain.loss[2]) < 1e-4);
    assert.ok(Math.abs(permuted.loss[1] - plain.loss[1]) > 1e-6, 'the midpoint should depend on the permutation');
    const reset = await evaluatePathHandler({ ...base, resetBatchNorm: true }, ctx);
    assert.equal(reset.loss.length, 3);
    assert.ok(reset.loss.every(Number.isFinite));
    assert.ok(Math.abs(reset.loss[1] - plain.loss[1]) > 1e-6, 'batchnorm reset should change the interpolated model');
  } finally {
    await tmp.remove();
  }
});

test('model config: read beside the checkpoint or from an explicit path, validated', async () => {
  const { writeFileSync } = await import('node:fs');
  const { readModelConfig, ModelError } = await import('../../../../src/engine/compute');
  const { makeTmpDir } = await import('../../helpers/tmp');
  const tmp = await makeTmpDir('rebasin-config-');
  try {
    const ck = tmp.file('m.safetensors');
    assert.deepEqual(readModelConfig(ck), {});
    writeFileSync(`${ck}.rebasin.json`, JSON.stringify({ family: 'mlp', activation: 'gelu', inputShape: [784] }));
    assert.equal(readModelConfig(ck).activation, 'gelu');
    writeFileSync(tmp.file('bad.json'), JSON.stringify({ family: 'lstm' }));
    assert.throws(() => readModelConfig(ck, tmp.file('bad.json')), (e: unknown) => e instanceof ModelError && e.kind === 'ConfigInvalid' && /bad\.json: family must be one of/.test(e.message));
    writeFileSync(tmp.file('layout.json'), JSON.stringify({ layout: [64, 'X'] }));
    assert.throws(() => readModelConfig(ck, tmp.file('layout.json')), /layout must be an array/);
    assert.throws(() => readModelConfig(ck, tmp.file('missing.json')), /missing\.json: model config not found/);
    // gelu really is used: an MLP's logits change with the activation.
    const sd = toTensorMap(mlpStateDict({ sizes: [6, 8, 3], seed: 2 }));
    const x = tf.tensor2d(randomInput([4, 6], 1).map((v) => 2 * v - 1), [4, 6]);
    const [r, g] = [buildModel(sd, { activation: 'relu' }), buildModel(sd, { activation: 'gelu' })];
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(r.forward(x), g.forward(x)))).dataSync()[0]);
    assert.ok(diff > 1e-3);
    r.dispose();
    g.dispose();
    x.dispose();
  } finally {
    await tmp.remove();
  }
});
