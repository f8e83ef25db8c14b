import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withFileNamed } from '../../../src/engine/errorNaming';
import { EngineError } from '../../../src/engine/errors';
import { SafetensorsError } from '../../../src/core/safetensors';

const barrier = { kind: 'barrier', a: '/m/gpt2-a/model.safetensors', b: '/m/gpt2-b/model.safetensors', data: { path: '/d/tokens.npy' }, steps: 3, align: true, seed: 0, maxIter: 1 } as const;

test('an error from a deeper layer gets the request\'s files in front, keeping its kind', () => {
  const e = withFileNamed(new Error('GatherV2: the index value 70 is not in [0, 63]'), barrier);
  assert.ok(e instanceof EngineError);
  assert.equal(e.message, 'gpt2-a/model.safetensors, gpt2-b/model.safetensors, tokens.npy: GatherV2: the index value 70 is not in [0, 63]');
  assert.equal(e.kind, 'Error');
  const align = withFileNamed(new Error('interpolate: tensor `w` has shape [2] in A and [3] in B'), { kind: 'align', a: '/m/a.safetensors', b: '/m/b.safetensors', method: 'weight', seed: 0, maxIter: 1 });
  assert.match((align as Error).message, /^b\.safetensors: interpolate: /);
});

test('an error that names a file already, and a cancellation, are left as they are', () => {
  const named = new SafetensorsError('InvalidOffset', '/m/gpt2-b/model.safetensors', 'tensor `w` offsets overlap');
  assert.equal(withFileNamed(named, barrier), named);
  assert.match(named.message, /^gpt2-b\/model\.safetensors: /, 'a Hugging Face file is named with its folder');
  const cancelled = new EngineError('Cancelled', 'barrier cancelled');
  assert.equal(withFileNamed(cancelled, barrier), cancelled);
});

test('an error about the output (a full disk) names the output and is left as it is', () => {
  const full = new Error('merge.safetensors: cannot write 68392 bytes at offset 65536 (ENOSPC): no space left on device, write');
  const merge = { kind: 'merge', inputs: ['/m/a.safetensors', '/m/b.safetensors'], out: '/full/merge.safetensors', lambda: 0.5, align: true, seed: 0, maxIter: 1 } as const;
  assert.equal(withFileNamed(full, { ...merge, inputs: [...merge.inputs] }), full);
  const align = { kind: 'align', a: '/m/a.safetensors', b: '/m/b.safetensors', out: '/full/align.safetensors', method: 'weight', seed: 0, maxIter: 1 } as const;
  const alignFull = new Error('align.safetensors: cannot write 68288 bytes at offset 65536 (ENOSPC): no space left on device, write');
  assert.equal(withFileNamed(alignFull, align), alignFull);
});
