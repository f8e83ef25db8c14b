/**
 * Mixtral (src/engine/lm/mixtral.ts) against the logits `transformers` computed for
 * test/fixtures/hf/mixtral-tiny (4 experts, top 2, 2 KV groups; see its SOURCES.md), read with
 * the experts as stored and as the stacked view the spec uses (core/moe/expertStack.ts); a random
 * element of the inferred group (experts reordered per layer with the router's rows, each
 * expert's units, heads within KV groups, KV groups, v/o dimensions, the residual stream) keeps
 * the logits, and moving one router row without its expert does not. The family's optional
 * LmArchitecture capabilities reach the generic code: the experts' feature axes and memory figure.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { stackExperts } from '../../../../src/core/moe/expertStack';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { attentionLayers } from '../../../../src/core/permspec/attentionLayers';
import { initBackend } from '../../../../src/engine/backend';
import { checkLmEquivalence } from '../../../../src/engine/compute/transformerEquivalence';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { readLmConfig, type LmConfig } from '../../../../src/engine/lm/config';
import { lmFeatureAxes } from '../../../../src/engine/lm/featureAxes';
import { lmBytesPerSequence, lmParameterCount } from '../../../../src/engine/lm/memoryPlan';
import { buildLm } from '../../../../src/engine/lm/model';
import { routingWeights } from '../../../../src/engine/lm/mixtral';
import { hfFixture } from '../../helpers/hfFixtures';

before(async () => {
  await initBackend('wasm');
});

const DIR = hfFixture('mixtral-tiny');

async function reference(): Promise<{ ids: Int32Array; logits: Float32Array; shape: number[] }> {
  const ckpt = await openCheckpoint(path.join(DIR, 'reference_logits.safetensors'));
  try {
    return { ids: Int32Array.from(await ckpt.readFloat32('input_ids')), logits: await ckpt.readFloat32('logits'), shape: [...ckpt.get('logits')!.shape] };
  } finally {
    await ckpt.close();
  }
}

/** Every tensor of the fixture, experts as stored (`experts.E.wN`) or through the stacked view (`experts.*.wN`). */
async function fixtureTensors(stacked = true): Promise<Map<string, DenseTensor>> {
  const stored = await openCheckpoint(path.join(DIR, 'model.safetensors'));
  const ck = stacked ? stackExperts(stored) : stored;
  try {
    const out = new Map<string, DenseTensor>();
    for (const t of ck.tensors) out.set(t.name, { shape: [...t.shape], data: await ck.readFloat32(t.name) });
    return out;
  } finally {
    await ck.close();
  }
}

/** Largest |ours - transformers| over the reference batch, and the largest logit. */
async function worstAgainstReference(tensors: TensorMap, config: LmConfig): Promise<{ worst: number; scale: number; description: string }> {
  const ref = await reference();
  const model = buildLm(tensors, config, 'mixtral-tiny/model.safetensors');
  try {
    const [n, s] = ref.shape;
    const got = tf.tidy(() => model.logits(tf.tensor2d(ref.ids, [n, s], 'int32')).dataSync());
    assert.equal(got.length, ref.logits.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref.logits[i]));
    return { worst, scale: ref.logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0), description: model.description };
  } finally {
    model.dispose();
  }
}

describe('Mixtral forward pass', () => {
  it('config.json of transformers 5: rope_parameters, head_dim null, experts', async () => {
    const c = await readLmConfig(path.join(DIR, 'config.json'));
    assert.equal(c.family, 'mixtral');
    assert.deepEqual(c.experts, { count: 4, topK: 2 });
    assert.equal(c.headDim, 16);
    assert.equal(c.kvHeads, 2);
    assert.equal(c.rope?.theta, 1e6);
    assert.equal(c.eps, 1e-5);
    assert.deepEqual(c.defaulted, []);
  });

  it('reproduces the logits of transformers (experts as stored)', async () => {
    const lm = await loadLmCheckpoint(DIR);
    const tensors = await fixtureTensors(false);
    assert.ok(tensors.has('model.layers.0.block_sparse_moe.experts.3.w2.weight'));
    const { worst, scale, description } = await worstAgainstReference(tensors, lm.config);
    assert.match(description, /mixtral: 2 layers, width 64, 4 heads \(2 key\/value\) of 16, 4 experts of 96 units \(top 2\), rotary base 1000000, logits through `lm_head`/);
    assert.ok(worst < 1e-4 * Math.max(1, scale), `largest difference ${worst} (logits up to ${scale})`);
  });

  it('reproduces them from the stacked view of the experts (as loadLmCheckpoint reads them)', async () => {
    const lm = await loadLmCheckpoint(DIR);
    assert.ok(lm.tensors.has('model.layers.0.block_sparse_moe.experts.*.w2.weight'));
    const { worst, scale } = await worstAgainstReference(lm.tensors, lm.config);
    assert.ok(worst < 1e-4 * Math.max(1, scale), `largest difference ${worst} (logits up to ${scale})`);
  });

  it('parameter count from config.json alone equals the parameters in the file', async () => {
    const lm = await loadLmCheckpoint(DIR);
    assert.equal(lmParameterCount(lm.config), [...lm.tensors.values()].reduce((a, t) => a + t.data.length, 0));
  });

  it('routing: the top k of the softmax, renormalised, the others 0', () => {
    const w = tf.tidy(() => routingWeights(tf.tensor2d([[0, 1, 2, 3], [3, 0, 0, 1]]), 2).arraySync());
    const e = (xs: number[]) => xs.map(Math.exp);
    const [a, b] = [e([2, 3]), e([3, 1])];
    const want = [[0, 0, a[0] / (a[0] + a[1]), a[1] / (a[0] + a[1])], [b[0] / (b[0] + b[1]), 0, 0, b[1] / (b[0] + b[1])]];
    w.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) < 1e-6, `${i},${j}: ${x} vs ${want[i][j]}`)));
  });
});

describe('Mixtral symmetries', () => {
  it('the inferred spec permutes the experts (router rows with them), their units, heads and the stream', async () => {
    const tensors = await fixtureTensors();
    const { spec, notes } = inferSpec([...tensors].map(([name, t]) => ({ name, shape: t.shape })), readHfConfig(path.join(DIR, 'model.safetensors')));
    const l = 'model.layers.0';
    assert.equal(spec.perms[`P_${l}.experts`], 4);
    assert.equal(spec.perms[`P_${l}.expert_mlp`], 4 * 96);
    assert.equal(spec.blocks?.[`P_${l}.expert_mlp`], 4);
    assert.equal(spec.perms[`P_${l}.kv_heads`], 2);
    assert.deepEqual(spec.axes[`${l}.block_sparse_moe.gate.weight`], [{ parts: [{ split: [4, 1], perms: [`P_${l}.experts`, null] }] }, 'P_residual']);
    const block = { parts: [{ split: [4, 96], perms: [`P_${l}.experts`, `P_${l}.expert_mlp`] }] };
    assert.deepEqual(spec.axes[`${l}.block_sparse_moe.experts.*.w1.weight`], [block, 'P_residual']);
    assert.deepEqual(spec.axes[`${l}.block_sparse_moe.experts.*.w2.weight`], ['P_residual', block]);
    assert.ok(notes.some((n) => /the 4 experts of each layer permute/.test(n)), notes.join('\n'));
    // The experts are blocks of the spec but not attention layers (inspector, alignment panel).
    assert.deepEqual(attentionLayers(spec).map((a) => a.shape), ['2 KV groups × 2 query heads × 16 dims', '2 KV groups × 2 query heads × 16 dims']);
  });

  it('a random element of the group keeps the logits; a router row moved alone does not', async () => {
    const lm = await loadLmCheckpoint(DIR);
    const tensors = await fixtureTensors();
    const { spec } = inferSpec([...tensors].map(([name, t]) => ({ name, shape: t.shape })), readHfConfig(path.join(DIR, 'model.safetensors')));
    for (const seed of [1, 2, 3]) {
      const perms = randomPermutations(spec, seed);
      assert.ok([...perms['P_model.layers.1.experts']].some((v, i) => v !== i), 'the experts move');
      const { report } = checkLmEquivalence(tensors, applyPermutations(spec, perms, tensors), lm.config);
      assert.equal(report.ok, true, `seed ${seed}: ${report.message ?? ''} (${report.relDiff})`);
    }
    // Swap two router rows of layer 0 without their experts: other experts are chosen.
    const gate = 'model.layers.0.block_sparse_moe.gate.weight';
    const g = tensors.get(gate)!;
    const data = Float32Array.from(g.data);
    const d = g.shape[1];
    data.set(g.data.subarray(0, d), d);
    data.set(g.data.subarray(d, 2 * d), 0);
    const broken = new Map(tensors).set(gate, { shape: g.shape, data });
    const { report } = checkLmEquivalence(tensors, broken, lm.config);
    assert.equal(report.ok, false);
  });
});

describe('Mixtral through the generic LM code (its LmArchitecture capabilities)', () => {
  it("activation matching's feature axes: the experts' block axis per layer, no dense MLP", async () => {
    const c = await readLmConfig(path.join(DIR, 'config.json'));
    const tensors = await fixtureTensors();
    const { spec } = inferSpec([...tensors].map(([name, t]) => ({ name, shape: t.shape })), readHfConfig(path.join(DIR, 'model.safetensors')));
    const axes = lmFeatureAxes(spec, c, 'model.');
    assert.equal(axes.residual, 'P_residual');
    assert.deepEqual(axes.mlp, [undefined, undefined]);
    assert.deepEqual(axes.experts?.map((p) => p?.perms), [['P_model.layers.0.experts', 'P_model.layers.0.expert_mlp'], ['P_model.layers.1.experts', 'P_model.layers.1.expert_mlp']]);
    assert.ok(axes.heads?.every((h) => h?.out !== undefined));
  });

  it("the memory plan counts the experts' per-token values, not a dense MLP's", async () => {
    const c = await readLmConfig(path.join(DIR, 'config.json'));
    const f = c.intermediate!;
    const t = 16;
    const perToken = 12 * c.hidden + 10 * c.heads * c.headDim + (5 * f + 4 * c.experts!.count + 2 * c.hidden);
    assert.equal(lmBytesPerSequence(c, t), 4 * (5 * c.heads * t * t + t * perToken));
  });
});
