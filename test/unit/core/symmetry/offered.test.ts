/** Which checkpoints the extension offers `--symmetry orthogonal` for, from their config.json (before anything is loaded). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { orthogonalSymmetryOffered } from '../../../../src/core/symmetry/offered';
import { hfFixture } from '../../helpers/hfFixtures';

test('GPT-2, Llama-family, Mixtral and ViT checkpoints (folder or weights file) have the orthogonal symmetry', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'mixtral-tiny', 'vit-tiny']) {
    assert.equal(orthogonalSymmetryOffered(hfFixture(name)), true, name);
  }
  assert.equal(orthogonalSymmetryOffered(path.join(hfFixture('gpt2-tiny'), 'model.safetensors')), true);
  assert.equal(orthogonalSymmetryOffered(path.join(hfFixture('vit-tiny'), 'model.safetensors')), true);
});

test('BERT (post-LN) and files without a config.json do not', () => {
  for (const name of ['bert-tiny']) {
    assert.equal(orthogonalSymmetryOffered(hfFixture(name)), false, name);
  }
  assert.equal(orthogonalSymmetryOffered(path.join(hfFixture('gpt2-tiny'), 'no-such-dir', 'x.safetensors')), false);
});
