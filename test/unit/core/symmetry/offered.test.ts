/** Which checkpoints the extension offers `--symmetry orthogonal` for, from their config.json (before anything is loaded). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { orthogonalModelKind } from '../../../../src/core/symmetry/offered';
import { hfFixture } from '../../helpers/hfFixtures';

test('GPT-2, Llama-family, Mixtral and ViT checkpoints (folder or weights file) have the orthogonal symmetry', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'mixtral-tiny', 'vit-tiny']) {
    assert.notEqual(orthogonalModelKind(hfFixture(name)), undefined, name);
  }
  assert.equal(orthogonalModelKind(path.join(hfFixture('gpt2-tiny'), 'model.safetensors')), 'language model');
  assert.equal(orthogonalModelKind(path.join(hfFixture('vit-tiny'), 'model.safetensors')), 'classifier');
  // The kind decides which methods are offered (the orthogonal STE trains language models alone).
  assert.equal(orthogonalModelKind(hfFixture('gpt2-tiny')), 'language model');
  assert.equal(orthogonalModelKind(hfFixture('mixtral-tiny')), 'language model');
  assert.equal(orthogonalModelKind(hfFixture('vit-tiny')), 'classifier');
  assert.equal(orthogonalModelKind(hfFixture('bert-tiny')), undefined);
});

test('BERT (post-LN) and files without a config.json do not', () => {
  for (const name of ['bert-tiny']) {
    assert.equal(orthogonalModelKind(hfFixture(name)), undefined, name);
  }
  assert.equal(orthogonalModelKind(path.join(hfFixture('gpt2-tiny'), 'no-such-dir', 'x.safetensors')), undefined);
});
