import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkpointName, checkpointNamePair } from '../../../src/core/checkpointName';

test('a checkpoint inside a Hugging Face model folder is named by its folder', () => {
  assert.equal(checkpointName('/w/models/gpt2-small/model.safetensors'), 'gpt2-small');
  assert.equal(checkpointName('C:\\w\\gpt2-small\\model.safetensors'), 'gpt2-small');
  assert.equal(checkpointName('/w/llama/model.safetensors.index.json'), 'llama (sharded)');
  assert.equal(checkpointName('/w/llama/model-00001-of-00002.safetensors'), 'llama (shard 1 of 2)');
});

test('outputs written beside a generic file name keep the folder in front', () => {
  assert.equal(checkpointName('/w/gpt2-b/model.aligned.safetensors'), 'gpt2-b/model.aligned.safetensors');
  assert.equal(checkpointName('/w/gpt2-a/model.merged.safetensors'), 'gpt2-a/model.merged.safetensors');
  assert.equal(checkpointName('/w/sd/diffusion_pytorch_model.safetensors'), 'sd/diffusion_pytorch_model.safetensors');
});

test('a file with its own name keeps it; a path without folder is its base name', () => {
  assert.equal(checkpointName('/w/models/b.safetensors'), 'b.safetensors');
  assert.equal(checkpointName('/w/models/model_a.safetensors'), 'model_a.safetensors');
  assert.equal(checkpointName('model.safetensors'), 'model.safetensors');
  assert.equal(checkpointName('/w/runs/big.safetensors.index.json'), 'big.safetensors.index.json');
});

test('two checkpoints with the same name get one more folder each', () => {
  assert.deepEqual(checkpointNamePair('/w/gpt2-a/model.safetensors', '/w/gpt2-b/model.safetensors'), ['gpt2-a', 'gpt2-b']);
  assert.deepEqual(checkpointNamePair('/w/x/m/model.safetensors', '/w/y/m/model.safetensors'), ['x/m', 'y/m']);
  assert.deepEqual(checkpointNamePair('/w/run1/a.safetensors', '/w/run2/a.safetensors'), ['run1/a.safetensors', 'run2/a.safetensors']);
});
