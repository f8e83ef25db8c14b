/** The symmetry choice of "Align with…": offered only where the engine can do both (activation matching on a GPT-2 or Llama-family model). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS, methodInfo } from '../../../src/core/methods';
import { symmetryChoices } from '../../../src/extension/symmetryChoice';

test('orthogonal maps are offered with activation matching only, and only for a checkpoint that has them', () => {
  for (const m of METHODS) {
    const offered = symmetryChoices(m, true).map((c) => c.symmetry);
    assert.deepEqual(offered, m.id === 'activation' ? ['permutation', 'orthogonal'] : [], m.id);
    assert.deepEqual(symmetryChoices(m, false), [], `${m.id} on a model without the orthogonal symmetry`);
  }
});

test('each choice says in one line what it means', () => {
  const [perm, orth] = symmetryChoices(methodInfo('activation'), true);
  assert.match(`${perm.label} (${perm.description})`, /^Permutations \(exact, the paper's symmetry\)$/);
  assert.match(orth.description, /needs data/);
  assert.match(orth.detail, /writes A'/);
  for (const c of [perm, orth]) assert.ok(!c.detail.includes('\n'));
});
