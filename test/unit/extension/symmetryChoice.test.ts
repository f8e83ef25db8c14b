/** The symmetry choice of "Align with…": offered only where the engine can do both (weight and activation matching on GPT-2, Llama family, Mixtral, ViT; STE on the language models). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS, methodInfo } from '../../../src/core/methods';
import { symmetryChoices } from '../../../src/extension/symmetryChoice';

test('orthogonal maps are offered with weight matching, activation matching and STE, and only for a checkpoint that has them', () => {
  for (const m of METHODS) {
    const offered = symmetryChoices(m, 'language model').map((c) => c.symmetry);
    assert.deepEqual(offered, ['permutation', 'orthogonal'], m.id);
    assert.deepEqual(symmetryChoices(m, undefined), [], `${m.id} on a model without the orthogonal symmetry`);
  }
});

test('on a ViT pair (classifiers) with weight and activation matching, not with STE (the engine trains language models alone)', () => {
  assert.deepEqual(symmetryChoices(methodInfo('weight'), 'classifier').map((c) => c.symmetry), ['permutation', 'orthogonal']);
  assert.deepEqual(symmetryChoices(methodInfo('activation'), 'classifier').map((c) => c.symmetry), ['permutation', 'orthogonal']);
  assert.deepEqual(symmetryChoices(methodInfo('ste'), 'classifier'), []);
});

test('each choice says in one line what it means', () => {
  const [perm, orth] = symmetryChoices(methodInfo('activation'), 'language model');
  assert.match(`${perm.label} (${perm.description})`, /^Permutations \(exact, the paper's symmetry\)$/);
  assert.match(orth.description, /needs data/);
  assert.match(orth.detail, /writes A'/);
  for (const c of [perm, orth]) assert.ok(!c.detail.includes('\n'));
  // Weight matching reads no data: its orthogonal choice does not ask for any.
  const [, weightOrth] = symmetryChoices(methodInfo('weight'), 'language model');
  assert.doesNotMatch(weightOrth.description, /data/);
  assert.match(symmetryChoices(methodInfo('ste'), 'language model')[1].description, /needs data/);
});
