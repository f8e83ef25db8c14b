/** The symmetry choice of "Align with…": offered only where the engine can do both (every method, on a GPT-2 or Llama-family model). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS, methodInfo } from '../../../src/core/methods';
import { symmetryChoices } from '../../../src/extension/symmetryChoice';

test('orthogonal maps are offered with weight matching, activation matching and STE, and only for a checkpoint that has them', () => {
  for (const m of METHODS) {
    const offered = symmetryChoices(m, true).map((c) => c.symmetry);
    assert.deepEqual(offered, ['permutation', 'orthogonal'], m.id);
    assert.deepEqual(symmetryChoices(m, false), [], `${m.id} on a model without the orthogonal symmetry`);
  }
});

test('each choice says in one line what it means', () => {
  const [perm, orth] = symmetryChoices(methodInfo('activation'), true);
  assert.match(`${perm.label} (${perm.description})`, /^Permutations \(exact, the paper's symmetry\)$/);
  assert.match(orth.description, /needs data/);
  assert.match(orth.detail, /writes A'/);
  for (const c of [perm, orth]) assert.ok(!c.detail.includes('\n'));
  // Weight matching reads no data: its orthogonal choice does not ask for any.
  const [, weightOrth] = symmetryChoices(methodInfo('weight'), true);
  assert.doesNotMatch(weightOrth.description, /data/);
  assert.match(symmetryChoices(methodInfo('ste'), true)[1].description, /needs data/);
});
