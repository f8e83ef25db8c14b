/**
 * Mixtral as a family of the registry (src/core/families/mixtral.ts): detected by its router
 * before Llama (whose naming it shares), with or without config.json; config.json's `model_type`
 * resolves to it; its spec is Llama's attention plus the experts' rules; its orthogonal layout
 * is Llama's with the experts' stacked view as the MLP and the router reading the MLP norm; what
 * it does not do (a config from the shapes alone, a layout of unstacked experts) is refused in
 * one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { lmCheckpointFamily } from '../../../../src/core/families/lmCheckpoint';
import { parseLmConfig } from '../../../../src/core/families/lmConfig';
import { coreFamily, detectFamily } from '../../../../src/core/families/registry';
import { stackExperts } from '../../../../src/core/moe/expertStack';
import { openCheckpoint } from '../../../../src/core/safetensors';
import type { TensorShape } from '../../../../src/core/permspec/shapes';
import { inferSpec } from '../../../../src/core/permspec';
import { SymmetryUnsupported, transformerLayout } from '../../../../src/core/symmetry';
import { hfFixture } from '../../helpers/hfFixtures';

async function shapes(dir: string, stacked: boolean): Promise<TensorShape[]> {
  const stored = await openCheckpoint(path.join(dir, 'model.safetensors'));
  try {
    return (stacked ? stackExperts(stored) : stored).tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
  } finally {
    await stored.close();
  }
}

test('Mixtral is detected by its router before Llama, with or without config.json; Llama stays Llama', async () => {
  const mixtral = hfFixture('mixtral-tiny');
  for (const stacked of [true, false]) {
    const tensors = await shapes(mixtral, stacked);
    assert.equal(detectFamily(tensors)?.id, 'mixtral', `stacked ${stacked}, no config.json`);
    assert.equal(detectFamily(tensors, readHfConfig(path.join(mixtral, 'model.safetensors')))?.id, 'mixtral', `stacked ${stacked}, config.json`);
  }
  const llama = hfFixture('llama-tiny-gqa');
  assert.equal(detectFamily(await shapes(llama, false), readHfConfig(path.join(llama, 'model.safetensors')))?.id, 'llama');
  assert.deepEqual(lmCheckpointFamily(mixtral), { family: 'mixtral' });
  assert.deepEqual(lmCheckpointFamily(llama), { family: 'llama' });
});

test("Mixtral's spec: reported as a transformer of variant mixtral, experts and units per layer, Llama's heads", async () => {
  const dir = hfFixture('mixtral-tiny');
  const r = inferSpec(await shapes(dir, true), readHfConfig(path.join(dir, 'model.safetensors')));
  assert.equal(r.family, 'transformer');
  assert.equal(r.variant, 'mixtral');
  const perms = new Set(Object.values(r.spec.axes).flat().flatMap((e) => (typeof e === 'string' ? [e] : e && typeof e === 'object' ? e.parts.flatMap((p) => p.perms) : [])));
  for (const p of ['P_residual', 'P_model.layers.0.experts', 'P_model.layers.0.expert_mlp', 'P_model.layers.1.kv_heads', 'P_model.layers.1.vo']) assert.ok(perms.has(p), p);
  assert.ok(r.notes.some((n) => /mixture of experts: the 4 experts/.test(n)));
  assert.ok(!r.notes.some((n) => /P_<block>\.mlp/.test(n)), 'no dense MLP note');
});

test("Mixtral's config.json reading is Llama's attention with MixtralConfig's defaults and the experts", () => {
  const c = parseLmConfig({ model_type: 'mixtral', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, intermediate_size: 96, max_position_embeddings: 64, num_local_experts: 4, num_experts_per_tok: 2, head_dim: null, rope_parameters: { rope_theta: 5e5, rope_type: 'default' } }, 'm/config.json');
  assert.equal(c.family, 'mixtral');
  assert.deepEqual(c.experts, { count: 4, topK: 2 });
  assert.equal(c.headDim, 16);
  assert.equal(c.rope?.theta, 5e5);
  assert.equal(c.eps, 1e-5);
  const older = parseLmConfig({ model_type: 'mixtral', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, intermediate_size: 96, max_position_embeddings: 64, num_local_experts: 4, num_experts_per_tok: 2 }, 'm/config.json');
  assert.equal(older.rope?.theta, 1e6, "MixtralConfig's rotary base");
});

test('the orthogonal layout: Llama\'s, the experts stacked as the MLP, the router a reader of the MLP norm; unstacked experts and a config from the shapes are refused in one line', async () => {
  const dir = hfFixture('mixtral-tiny');
  const lm = coreFamily('mixtral').lm!;
  assert.throws(() => lm.fromShapes(new Map(), {}), /num_experts_per_tok/);
  const config = parseLmConfig({ model_type: 'mixtral', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, intermediate_size: 96, max_position_embeddings: 64, num_local_experts: 4, num_experts_per_tok: 2 }, path.join(dir, 'config.json'));
  const asMap = (ts: TensorShape[]) => new Map(ts.map((t) => [t.name, { shape: t.shape, data: new Float32Array(0) }]));
  const layout = transformerLayout(asMap(await shapes(dir, true)), config);
  assert.equal(layout.arch, 'mixtral');
  assert.equal(layout.rotary, true);
  const b = layout.blocks[1];
  assert.deepEqual(b.experts, { router: { weight: 'model.layers.1.block_sparse_moe.gate.weight', storage: 'outIn' }, count: 4 });
  assert.deepEqual(b.mlpNorm.readers.map((r) => r.weight), ['model.layers.1.block_sparse_moe.gate.weight', 'model.layers.1.block_sparse_moe.experts.*.w1.weight', 'model.layers.1.block_sparse_moe.experts.*.w3.weight']);
  assert.equal(b.mlpOut.weight, 'model.layers.1.block_sparse_moe.experts.*.w2.weight');
  assert.equal(b.mlpWidth, 4 * 96);
  const stored = asMap(await shapes(dir, false));
  assert.throws(() => transformerLayout(stored, config), (e: unknown) => e instanceof SymmetryUnsupported && /experts of layer 0 are not stacked/.test(e.message) && !e.message.includes('\n'));
});
