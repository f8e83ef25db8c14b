/**
 * The ViT core module (src/core/families/vit.ts) on test/fixtures/hf/vit-tiny (written by
 * transformers, see its SOURCES.md): detection, the inferred spec (residual stream, heads with
 * q/k and v/o dimensions, MLP units), what the inspector shows (family label, attention layers),
 * the model config taken from config.json (a model config's keys win), and a ViT folder read as a
 * classifier evaluated on labelled images, not a language model.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readHfConfig, readModelConfig } from '../../../../src/core/families';
import { dataFitProblem } from '../../../../src/core/data/dataFit';
import { lmCheckpointFamily } from '../../../../src/core/families/lmCheckpoint';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { inferSpec, type TensorShape } from '../../../../src/core/permspec';
import { SpecError } from '../../../../src/core/permspec/errors';
import { architectureOf } from '../../../../src/extension/inspectorArchitecture';
import { npyBytes, zipBytes } from '../../helpers/dataFiles';
import { hfFixture } from '../../helpers/hfFixtures';
import { tmpDirFor } from '../../helpers/tmp';

const DIR = hfFixture('vit-tiny');
const WEIGHTS = path.join(DIR, 'model.safetensors');

let shapes: TensorShape[];

before(async () => {
  const ckpt = await openCheckpoint(WEIGHTS);
  await ckpt.close();
  shapes = ckpt.tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
});

test('the fixture is a vit: residual stream, heads with q/k and v/o dimensions, MLP units', () => {
  const inferred = inferSpec(shapes, readHfConfig(WEIGHTS));
  assert.equal(inferred.id, 'vit');
  assert.equal(inferred.family, 'vit');
  const { perms, axes, blocks } = inferred.spec;
  const L = 'vit.encoder.layer.0';
  assert.deepEqual(perms, {
    P_residual: 64,
    ...Object.fromEntries([0, 1].flatMap((l) => [[`P_vit.encoder.layer.${l}.heads`, 4], [`P_vit.encoder.layer.${l}.qk`, 64], [`P_vit.encoder.layer.${l}.vo`, 64], [`P_vit.encoder.layer.${l}.mlp`, 128]])),
  });
  assert.deepEqual(blocks, Object.fromEntries([0, 1].flatMap((l) => [[`P_vit.encoder.layer.${l}.qk`, 4], [`P_vit.encoder.layer.${l}.vo`, 4]])));
  assert.deepEqual(axes['vit.embeddings.cls_token'], [null, null, 'P_residual']);
  assert.deepEqual(axes['vit.embeddings.position_embeddings'], [null, null, 'P_residual']);
  assert.deepEqual(axes['vit.embeddings.patch_embeddings.projection.weight'], ['P_residual', null, null, null]);
  assert.deepEqual(axes['classifier.weight'], [null, 'P_residual']);
  assert.deepEqual(axes['classifier.bias'], [null]);
  assert.deepEqual(axes['vit.layernorm.bias'], ['P_residual']);
  const heads = (inner: string) => ({ parts: [{ split: [4, 16], perms: [`P_${L}.heads`, `P_${L}.${inner}`] }] });
  assert.deepEqual(axes[`${L}.attention.attention.query.weight`], [heads('qk'), 'P_residual']);
  assert.deepEqual(axes[`${L}.attention.attention.key.bias`], [heads('qk')]);
  assert.deepEqual(axes[`${L}.attention.attention.value.weight`], [heads('vo'), 'P_residual']);
  assert.deepEqual(axes[`${L}.attention.output.dense.weight`], ['P_residual', heads('vo')]);
  assert.deepEqual(axes[`${L}.attention.output.dense.bias`], ['P_residual']);
  assert.deepEqual(axes[`${L}.intermediate.dense.weight`], [`P_${L}.mlp`, 'P_residual']);
  assert.deepEqual(axes[`${L}.output.dense.weight`], ['P_residual', `P_${L}.mlp`]);
  assert.deepEqual(axes[`${L}.layernorm_before.weight`], ['P_residual']);
});

test('the inspector names the family and shows the heads of each layer', () => {
  const arch = architectureOf(shapes, readHfConfig(WEIGHTS));
  assert.match(arch.family, /^Vision Transformer \(ViT, Hugging Face naming\): 9 permutation groups, about 10\^\d+ equivalent networks$/);
  assert.deepEqual(arch.attention?.map((a) => a.summary), [0, 1].map((l) => `layer ${l} attention: 4 heads × 16 dims; q/k dims permute jointly within each head; v/o dims permute within each head`));
});

test('without a head count, inference stops with one line saying where to give it; a model config gives it', async (t) => {
  const dir = await tmpDirFor(t);
  const bare = dir.file('vit.safetensors');
  copyFileSync(WEIGHTS, bare);
  assert.throws(
    () => inferSpec(shapes, readHfConfig(bare)),
    (e: Error) => e instanceof SpecError && !e.message.includes('\n') && /cannot tell the number of attention heads of this vit model .*"num_attention_heads" to config\.json .*"heads" to <checkpoint>\.rebasin\.json/.test(e.message),
  );
  writeFileSync(`${bare}.rebasin.json`, JSON.stringify({ heads: 4 }));
  assert.equal(inferSpec(shapes, readHfConfig(bare)).spec.perms['P_vit.encoder.layer.1.heads'], 4);
  // No config.json: the image size follows the position embeddings in the forward pass; eps its default there.
  assert.deepEqual(readModelConfig(bare), { heads: 4 });
});

test("the model config comes from config.json (ViTConfig's defaults where it is silent); a model config's keys win", async (t) => {
  assert.deepEqual(readModelConfig(WEIGHTS), { family: 'vit', heads: 4, eps: 1e-12, activation: 'gelu', inputShape: [3, 32, 32] });
  assert.deepEqual(readModelConfig(DIR), readModelConfig(WEIGHTS), 'a folder reads its own config.json');
  const dir = await tmpDirFor(t);
  const weights = dir.file('model.safetensors');
  writeFileSync(dir.file('config.json'), JSON.stringify({ model_type: 'vit', num_attention_heads: 2, image_size: [24, 32], patch_size: 8, num_channels: 1, hidden_act: 'quick_gelu' }));
  assert.deepEqual(readModelConfig(weights), { family: 'vit', heads: 2, eps: 1e-12, hiddenAct: 'quick_gelu', inputShape: [1, 24, 32] });
  writeFileSync(`${weights}.rebasin.json`, JSON.stringify({ heads: 4, eps: 1e-6 }));
  assert.deepEqual(readModelConfig(weights), { family: 'vit', heads: 4, eps: 1e-6, hiddenAct: 'quick_gelu', inputShape: [1, 24, 32] });
  // Other families' config.json gives no model config (language models read theirs themselves).
  assert.deepEqual(readModelConfig(path.join(hfFixture('bert-tiny'), 'model.safetensors')), {});
});

test('a ViT folder is a classifier: labelled images suit it, token ids do not', async (t) => {
  assert.equal(lmCheckpointFamily(DIR), undefined);
  assert.equal(lmCheckpointFamily(WEIGHTS), undefined);
  assert.deepEqual(lmCheckpointFamily(hfFixture('gpt2-tiny')), { family: 'gpt2' }, 'language models stay language models');
  const dir = await tmpDirFor(t);
  const tokens = dir.file('tokens.npz');
  const npy = (name: string, bytes: Buffer) => ({ name, stored: bytes, method: 0 as const, size: bytes.length });
  writeFileSync(tokens, zipBytes([npy('input_ids.npy', npyBytes('<i8', [1, 2], new Uint8Array(16)))]));
  assert.match((await dataFitProblem(tokens, DIR)) ?? '', /tokens\.npz holds token ids \(input_ids\), data for a language model, but vit-tiny is evaluated as a classifier/);
  const images = dir.file('images.npz');
  writeFileSync(images, zipBytes([
    npy('x.npy', npyBytes('<f4', [1, 3, 32, 32], new Uint8Array(4 * 3072))),
    npy('y.npy', npyBytes('<i8', [1], new Uint8Array(8))),
  ]));
  assert.equal(await dataFitProblem(images, DIR), undefined);
});
