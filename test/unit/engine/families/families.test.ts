/**
 * The family registries (src/core/families/, src/engine/families/): one core and one engine
 * module per family id, one detection rule shared by spec inference and forward passes, and
 * `config.json`'s `model_type` deciding between namings when both are present.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CORE_FAMILIES, FAMILY_IDS, detectFamily, readHfConfig } from '../../../../src/core/families';
import { inferSpec } from '../../../../src/core/permspec';
import { detectModelFamily } from '../../../../src/engine/compute';
import { ENGINE_FAMILIES } from '../../../../src/engine/families/registry';
import { cifarResnetStateDict, gpt2StateDict, llamaStateDict, mlpStateDict, resnetStateDict, shapesOf, toTensorMap, vggStateDict } from '../../helpers/stateDicts';
import { tmpDirFor } from '../../helpers/tmp';

test('every family id has exactly one core module and one engine module', () => {
  assert.deepEqual(CORE_FAMILIES.map((f) => f.id).sort(), [...FAMILY_IDS].sort());
  assert.deepEqual(ENGINE_FAMILIES.map((f) => f.id).sort(), [...FAMILY_IDS].sort());
  for (const f of ENGINE_FAMILIES) assert.ok(f.buildClassifier || f.lm, `${f.id}: no forward pass`);
});

test('spec inference and the forward pass detect the same family', () => {
  const cases = [
    ['mlp', mlpStateDict({ sizes: [6, 5, 4] })],
    ['vgg', vggStateDict({ cfg: [4, 'M', 6, 'M'], hidden: [8], numClasses: 3, spatial: 2 })],
    ['resnet', resnetStateDict({ block: 'basic', layers: [1, 1], widths: [4, 8], numClasses: 3 })],
    // A torchvision net with a 3x3 stem stays `resnet` (its naming says torchvision), not `resnet-cifar`.
    ['resnet', resnetStateDict({ block: 'basic', layers: [1, 1], widths: [4, 8], stemKernel: 3, inChannels: 1, numClasses: 3 })],
    ['resnet-cifar', cifarResnetStateDict({ shortcut: 'A', widths: [4, 8, 16] })],
    ['gpt2', gpt2StateDict({ layers: 1, dModel: 8, vocab: 11, positions: 6 })],
    ['llama', llamaStateDict({ layers: 1, dModel: 8, heads: 2, kvHeads: 1, intermediate: 12, vocab: 11 })],
  ] as const;
  for (const [id, sd] of cases) {
    const inferred = inferSpec(shapesOf(sd), id === 'gpt2' || id === 'llama' ? { heads: 2, kvHeads: id === 'llama' ? 1 : 2 } : undefined);
    assert.equal(inferred.id, id);
    assert.equal(detectModelFamily(toTensorMap(sd)), id, `${id}: engine detection`);
    assert.equal(inferred.family, id === 'gpt2' || id === 'llama' ? 'transformer' : id, `${id}: reported family (the CLI's JSON name)`);
  }
});

test('a model config names the family: `transformer` picks the naming the weights use', () => {
  const sd = toTensorMap(llamaStateDict({ layers: 1, dModel: 8, heads: 2, kvHeads: 1, intermediate: 12, vocab: 11 }));
  assert.equal(detectModelFamily(sd, { family: 'transformer' }), 'llama');
  assert.equal(detectModelFamily(toTensorMap(mlpStateDict({ sizes: [6, 5, 4] })), { family: 'resnet' }), 'resnet');
});

test("config.json's model_type decides between namings found in one checkpoint", async (t) => {
  const both = [...shapesOf(gpt2StateDict({ layers: 1, dModel: 8, vocab: 11, positions: 6 })), ...shapesOf(llamaStateDict({ layers: 1, dModel: 8, heads: 2, kvHeads: 1, intermediate: 12, vocab: 11 }))];
  assert.equal(detectFamily(both)?.id, 'gpt2', 'without config.json: registry order');
  const dir = await tmpDirFor(t);
  assert.equal(readHfConfig(dir.file('model.safetensors')), undefined);
  writeFileSync(dir.file('config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1 }));
  const hf = readHfConfig(dir.file('model.safetensors'));
  assert.deepEqual(hf, { model_type: 'llama', heads: 2, kvHeads: 1, headDim: 4 });
  assert.equal(detectFamily(both, hf)?.id, 'llama');
});

test('an unreadable or unusable config.json is refused in one line naming its folder, not ignored', async (t) => {
  const dir = await tmpDirFor(t);
  const folder = path.basename(dir.path);
  const weights = dir.file('model.safetensors');
  writeFileSync(dir.file('config.json'), '{not json');
  assert.throws(() => readHfConfig(weights), (e: Error) => e.message.startsWith(`${folder}/config.json: config.json is not valid JSON`) && !e.message.includes('\n'));
  // Heads as align reads them: LlamaConfig's default of 32 heads does not divide a width of 8.
  writeFileSync(dir.file('config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8 }));
  assert.throws(() => readHfConfig(weights), /config\.json: 32 attention heads do not divide the width 8: add "head_dim"/);
  // A head count that is not a positive integer is named, not asked for as if it were missing.
  writeFileSync(dir.file('config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8, num_attention_heads: '2' }));
  assert.throws(() => readHfConfig(weights), /"num_attention_heads" must be a positive integer, got "2"/);
});

test('model config schema: valid configs pass (other families\' keys included), each invalid field names its rule', async () => {
  const { validateModelConfig } = await import('../../../../src/core/families');
  assert.deepEqual(validateModelConfig({ family: 'resnet', inputShape: [1, 28, 28] }, 'm.json'), { family: 'resnet', inputShape: [1, 28, 28] });
  assert.deepEqual(validateModelConfig({ family: 'transformer', heads: 12 }, 'm.json'), { family: 'transformer', heads: 12 });
  assert.deepEqual(validateModelConfig({ family: 'vgg', layout: [64, 'M', 128], eps: 1e-3, activation: 'gelu' }, 'm.json').layout, [64, 'M', 128]);
  const bad: [unknown, RegExp][] = [
    [[], /m\.json: model config must be a json object/],
    [{ family: 'unet' }, /m\.json: family must be one of mlp, vgg, resnet, resnet-cifar, gpt2, llama, mixtral, bert, vit, transformer/],
    [{ activation: 'swish' }, /activation must be one of relu, gelu/],
    [{ inputShape: [] }, /inputShape must be a non-empty array of positive integers/],
    [{ inputShape: [1, 0, 28] }, /inputShape must be a non-empty array of positive integers/],
    [{ inputShape: '784' }, /inputShape must be a non-empty array of positive integers/],
    [{ layout: [64, 'X'] }, /layout must be an array of positive integers and "M"/],
    [{ eps: 0 }, /eps must be a positive number/],
  ];
  for (const [raw, re] of bad) assert.throws(() => validateModelConfig(raw, 'm.json'), re, JSON.stringify(raw));
});
