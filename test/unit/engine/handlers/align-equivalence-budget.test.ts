/**
 * The equivalence check holds π(B) and a forward pass beside A and B (4 models in float32): when
 * that is over the memory budget it is skipped with one line naming the bytes, and the alignment
 * is still written (the budget bounds the check as it bounds the matching; at the 1.1B scale the
 * matching fits half of a 24 GB machine and the check does not). On a tiny synthetic Llama pair
 * in BF16 (bench/scale/generate.ts; weight matching holds it at 2 bytes a value), the matching
 * fits a budget just under the check's 4 float32 models.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/dispatch';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { formatBytes } from '../../../../src/core/memoryPlan';
import { generateLlamaPair, parameterCount, PRESETS } from '../../../../bench/scale/generate';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-eq-budget-');
});
after(() => tmp.remove());

test('an equivalence check over the memory budget is skipped in one line; the alignment is written', async () => {
  const pair = await generateLlamaPair({ shape: PRESETS.tiny, dir: tmp.file('pair'), seed: 5 });
  const run = async (memoryBudget: number, out: string) => {
    const logs: string[] = [];
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
    const r = await alignHandler({ kind: 'align', a: pair.a, b: pair.b, out, method: 'weight', seed: 0, maxIter: 20, memoryBudget }, ctx);
    return { r, logs };
  };
  // π(B), a forward pass, A and B, each as float32.
  const checkBytes = 4 * 4 * parameterCount(PRESETS.tiny);
  const tight = await run(checkBytes - 1, tmp.file('tight'));
  assert.equal(tight.r.equivalence, undefined);
  const skipped = tight.logs.filter((l) => /^equivalence check skipped/.test(l));
  assert.equal(skipped.length, 1, tight.logs.join('\n'));
  assert.ok(skipped[0].endsWith(`need ${formatBytes(checkBytes)}, over the memory budget of ${formatBytes(checkBytes - 1)} (--memory-budget)`), skipped[0]);
  assert.ok(existsSync(tmp.file('tight')), 'the alignment is written');

  const roomy = await run(checkBytes, tmp.file('roomy'));
  assert.equal(roomy.r.equivalence?.ok, true, roomy.logs.join('\n'));
  assert.equal(roomy.logs.some((l) => /^equivalence check skipped/.test(l)), false);
});
