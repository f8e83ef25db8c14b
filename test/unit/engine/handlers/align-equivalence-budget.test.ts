/**
 * The equivalence check holds π(B) and a forward pass beside A and B (4 models in float32) and
 * beside what the process holds after matching (measured): when that is over the memory budget it
 * is skipped with one line naming the bytes, and the alignment is still written (at the 1.1B scale
 * the matching fits half of a 24 GB machine and the check does not). Weight matching counts the
 * process's runtime too: a budget below it is refused, naming it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { equivalenceOverBudget } from '../../../../src/core/memoryPlan';
import { EngineError } from '../../../../src/engine/errors';
import { generateLlamaPair, parameterCount, PRESETS } from '../../../../bench/scale/generate';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-eq-budget-');
});
after(() => tmp.remove());

test('the equivalence check counts what the process holds: skipped in one line when over the budget', () => {
  const mb = 1e6;
  // Four float32 models over the budget: skipped whatever the process holds.
  assert.equal(equivalenceOverBudget(100 * mb, 0, 399 * mb), 'π(B) and a forward pass beside A and B need 400 MB, over the memory budget of 399 MB (--memory-budget)');
  // The 77 MB-per-model Llama under 420 MB: 4 models fit, but not beside the 447 MB the process holds after matching.
  assert.equal(
    equivalenceOverBudget(80 * mb, 447 * mb, 420 * mb),
    'π(B) and a forward pass need 160 MB beside the 447 MB the process holds, over the memory budget of 420 MB (--memory-budget)',
  );
  assert.equal(equivalenceOverBudget(80 * mb, 200 * mb, 420 * mb), null);
});

test('align counts the process\'s runtime: a budget the runtime alone exceeds is refused naming it; a roomy one checks equivalence', async () => {
  const pair = await generateLlamaPair({ shape: PRESETS.tiny, dir: tmp.file('pair'), seed: 5 });
  const run = (memoryBudget: number, out: string) => {
    const logs: string[] = [];
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
    return { logs, result: alignHandler({ kind: 'align', a: pair.a, b: pair.b, out, method: 'weight', seed: 0, maxIter: 20, memoryBudget }, ctx) };
  };
  // π(B), a forward pass, A and B, each as float32: far below what Node and tfjs hold.
  const checkBytes = 4 * 4 * parameterCount(PRESETS.tiny);
  const tight = run(checkBytes, tmp.file('tight'));
  await assert.rejects(tight.result, (e: unknown) => {
    assert.ok(e instanceof EngineError && e.kind === 'OverBudget', String(e));
    assert.match(e.message, /weight matching: .* needs .*the process's runtime \d[\d.]* MB\), over the memory budget of /);
    return true;
  });
  assert.equal(existsSync(tmp.file('tight')), false, 'nothing is written');
  const roomy = run(4e9, tmp.file('roomy'));
  assert.equal((await roomy.result).equivalence?.ok, true, roomy.logs.join('\n'));
  assert.equal(roomy.logs.some((l) => /^equivalence check skipped/.test(l)), false);
});
