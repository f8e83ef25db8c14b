/**
 * The equivalence check holds π(B) and a forward pass beside A and B (4 models in float32): when
 * that is over the memory budget it is skipped with one line naming the bytes, and the alignment
 * is still written (the budget bounds the check as it bounds the matching; at the 1.1B scale the
 * matching fits half of a 24 GB machine and the check does not). On the tiny GPT-2 fixture
 * (498 kB of weights): matching fits 1.9 MB, the check needs 2.0 MB.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/dispatch';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-eq-budget-');
});
after(() => tmp.remove());

test('an equivalence check over the memory budget is skipped in one line; the alignment is written', async () => {
  const model = hfFixture('gpt2-tiny');
  const run = async (memoryBudget: number, out: string) => {
    const logs: string[] = [];
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
    const r = await alignHandler({ kind: 'align', a: model, b: model, out, method: 'weight', seed: 0, maxIter: 20, memoryBudget }, ctx);
    return { r, logs };
  };
  const tight = await run(1_900_000, tmp.file('tight'));
  assert.equal(tight.r.equivalence, undefined);
  const skipped = tight.logs.filter((l) => /^equivalence check skipped/.test(l));
  assert.equal(skipped.length, 1, tight.logs.join('\n'));
  assert.match(skipped[0], /need 2\.0 MB, over the memory budget of 1\.9 MB \(--memory-budget\)$/);
  assert.ok(existsSync(tmp.file('tight')), 'the alignment is written');

  const roomy = await run(2_100_000, tmp.file('roomy'));
  assert.equal(roomy.r.equivalence?.ok, true);
  assert.equal(roomy.logs.some((l) => /^equivalence check skipped/.test(l)), false);
});
