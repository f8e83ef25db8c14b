/**
 * REPAIR for a GPT-2's MLP units (src/engine/lm/repair.ts): after the correction, every block's
 * MLP pre-activation mean and standard deviation in the interpolated model equal the
 * interpolation of the endpoints' (measured again on the repaired weights), and at lambda = 0
 * the model is A.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { interpolate } from '../../../../src/core/matching/merge';
import { initBackend } from '../../../../src/engine/backend';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { lmUnitStats, repairLmInterpolated } from '../../../../src/engine/lm/repair';
import { hfFixture } from '../../helpers/hfFixtures';
import { randomGpt2, randomTokens } from '../../helpers/lmReference';

before(() => initBackend('wasm'));

test('REPAIR sets each GPT-2 MLP unit to the interpolated endpoint statistics', async () => {
  const lm = await loadLmCheckpoint(hfFixture('gpt2-tiny'));
  const { config } = lm;
  const a = lm.tensors;
  const b = randomGpt2({ layers: config.layers, d: config.hidden, vocab: config.vocab, positions: config.maxPositions, lmHead: false, seed: 4 });
  const n = 6;
  const t = 16;
  const input = prepareLmEvaluation(config, { ids: randomTokens(n, t, config.vocab, 2), n, t, source: 'ids', description: 'random ids' });
  const sa = await lmUnitStats(a, config, input);
  const sb = await lmUnitStats(b, config, input);
  for (const lambda of [0, 0.5]) {
    const repaired = await repairLmInterpolated(interpolate(a, b, lambda), lambda, sa, sb, config, input);
    const got = await lmUnitStats(repaired, config, input);
    got.forEach((g, l) => {
      g.mean.forEach((m, j) => {
        const want = (1 - lambda) * sa[l].mean[j] + lambda * sb[l].mean[j];
        assert.ok(Math.abs(m - want) < 2e-3 * Math.max(1, Math.abs(want)), `λ ${lambda} block ${l} unit ${j}: mean ${m} vs ${want}`);
      });
      g.std.forEach((s, j) => {
        const want = (1 - lambda) * sa[l].std[j] + lambda * sb[l].std[j];
        assert.ok(Math.abs(s - want) < 2e-3 * Math.max(1, want), `λ ${lambda} block ${l} unit ${j}: std ${s} vs ${want}`);
      });
    });
    if (lambda === 0) for (const [name, x] of a) x.data.forEach((v, i) => assert.ok(Math.abs(repaired.get(name)!.data[i] - v) < 1e-4 * Math.max(1, Math.abs(v)), name));
  }
});
