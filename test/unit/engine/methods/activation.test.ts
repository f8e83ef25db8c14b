/**
 * The request's memory budget reaches a classifier's activation matching (src/engine/methods/
 * activation.ts): its batches are planned beside what the process holds (measured), so a budget
 * below that is refused in one line naming B, and nothing is written; the default budget aligns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { OVER_BUDGET } from '../../../../src/core/memoryBudget';
import { initBackend } from '../../../../src/engine/backend';
import { dispatch } from '../../../../src/engine/dispatch';
import { EngineError } from '../../../../src/engine/errors';
import { writeRandomData, writeStateDict } from '../../helpers/engine-fixtures';
import { mlpStateDict, seededRandom } from '../../helpers/stateDicts';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
const N = 64;

before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-activation-budget-');
  for (const [name, seed] of [['a', 1], ['b', 2]] as const) await writeStateDict(tmp.file(`${name}.safetensors`), mlpStateDict({ sizes: [16, 32, 32, 10], seed }));
  await writeRandomData(tmp.file('data.safetensors'), N, 16, seededRandom(5));
});
after(() => tmp.remove());

function align(out: string, memoryBudget?: number): Promise<unknown> {
  return dispatch(
    { kind: 'align', a: tmp.file('a.safetensors'), b: tmp.file('b.safetensors'), out, method: 'activation', seed: 0, maxIter: 10, data: { path: tmp.file('data.safetensors') }, ...(memoryBudget !== undefined ? { memoryBudget } : {}) },
    { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined },
  );
}

test('a budget below what the process holds is refused in one line naming B; nothing is written', async () => {
  const out = tmp.file('small.safetensors');
  // 20 MB: room for the data set, not for the process (Node and tfjs alone hold more).
  await assert.rejects(align(out, 20e6), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.kind === OVER_BUDGET, String(e));
    assert.equal(e.file, tmp.file('b.safetensors'));
    assert.ok(!e.message.includes('\n'), e.message);
    assert.match(e.message, /^b\.safetensors: activation matching: needs .* for the process, the models, the data and the statistics .* per example, over the memory budget of 20\.0 MB: /);
    return true;
  });
  assert.equal(existsSync(out), false);
});

test('the default budget aligns', async () => {
  const out = tmp.file('default.safetensors');
  await align(out);
  assert.ok(existsSync(out));
});
