/**
 * Progress of a whole job (issue 19 item 7): an alignment and a MergeMany report a fraction of
 * the whole job that moves through the stages (reading, matching, writing) and never falls back,
 * so the caller's bar and its time left at the measured rate keep moving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Progress } from '../../../../src/core/checkpoint';
import { initBackend } from '../../../../src/engine/backend';
import { dispatch } from '../../../../src/engine/dispatch';
import { writeRandomData, writeStateDict } from '../../helpers/engine-fixtures';
import { mlpStateDict, seededRandom } from '../../helpers/stateDicts';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
const N = 64;

before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-job-progress-');
  for (const [name, seed] of [['a', 1], ['b', 2], ['c', 3]] as const) await writeStateDict(tmp.file(`${name}.safetensors`), mlpStateDict({ sizes: [16, 32, 32, 10], seed }));
  await writeRandomData(tmp.file('data.safetensors'), N, 16, seededRandom(5));
});
after(() => tmp.remove());

function run(request: Parameters<typeof dispatch>[0]): Promise<Progress[]> {
  const progress: Progress[] = [];
  return dispatch(request, { signal: new AbortController().signal, onProgress: (p) => progress.push(p), log: () => undefined }).then(() => progress);
}

function assertMonotonic(progress: readonly Progress[]): number[] {
  const fractions = progress.map((p) => p.fraction);
  assert.ok(fractions.every((f) => f !== undefined && f >= 0 && f <= 1), `every update has a fraction: ${fractions.join(' ')}`);
  for (let i = 1; i < fractions.length; i++) assert.ok(fractions[i]! >= fractions[i - 1]!, `falls back at ${i}: ${fractions.join(' ')}`);
  return fractions as number[];
}

test('activation matching: the bar moves on past reading while batches are matched, and on to writing', async () => {
  const progress = await run({ kind: 'align', a: tmp.file('a.safetensors'), b: tmp.file('b.safetensors'), out: tmp.file('b.aligned.safetensors'), method: 'activation', seed: 0, maxIter: 10, data: { path: tmp.file('data.safetensors') } });
  const fractions = assertMonotonic(progress);
  const at = (stage: string) => fractions.filter((_, i) => progress[i].stage === stage);
  assert.ok(Math.max(...at('loading')) <= 0.15 + 1e-9, 'reading is the first share only');
  const matching = at('activations');
  assert.ok(matching.length > 0);
  assert.ok(Math.max(...matching) > Math.max(...at('loading')), 'matching moves the bar on');
  assert.ok(Math.min(...at('writing')) >= 0.9, 'writing is near the end');
});

test('MergeMany reports how far the whole merge is, model by model', async () => {
  const progress = await run({ kind: 'merge', inputs: ['a', 'b', 'c'].map((n) => tmp.file(`${n}.safetensors`)), out: tmp.file('abc.safetensors'), lambda: 0.5, align: true, seed: 3, maxIter: 10 });
  const fractions = assertMonotonic(progress);
  const many = progress.map((p, i) => [p, fractions[i]] as const).filter(([p]) => p.stage === 'merge-many');
  assert.ok(many.length >= 3, 'one update per model at least');
  assert.match(many[0][0].message ?? '', /^MergeMany: round 1, model \d of 3/);
  assert.ok(many[many.length - 1][1] > many[0][1], 'the fraction moves while models are aligned');
});
