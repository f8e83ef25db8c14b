/**
 * merge --repair's check (handlers/mergeRepair.ts): the repaired weights it writes compute the
 * interpolated model with REPAIR's corrections applied in the pass, and the check tells: the
 * folded weights pass, the interpolated weights without the correction (what a merge that forgot
 * to fold would write) fail. On gpt2-tiny with token ids and on an MLP classifier.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor } from '../../../../src/core/checkpoint';
import { interpolate } from '../../../../src/core/matching/merge';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { encodeFromFloat32, writeSafetensors } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { repairedMerge } from '../../../../src/engine/handlers/mergeRepair';
import { readLmWeights } from '../../../../src/engine/lm/checkpoint';
import { testBackend } from '../../helpers/backend';
import { randomMlp, writeMlp } from '../../helpers/engine-fixtures';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { writeTokensNpy } from '../../helpers/trainGpt2';
import * as path from 'node:path';

let tmp: TmpDir;
const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };

before(async () => {
  await initBackend(testBackend());
  tmp = await makeTmpDir('rebasin-merge-repair-');
});
after(() => tmp?.remove());

/** Each tensor plus seeded uniform noise of its RMS. */
function perturbed(m: ReadonlyMap<string, DenseTensor>, seed: number): Map<string, DenseTensor> {
  const rand = mulberry32(seed);
  return new Map([...m].map(([name, t]) => {
    const rms = Math.sqrt(t.data.reduce((s, v) => s + v * v, 0) / Math.max(1, t.data.length)) || 1;
    return [name, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + rms * (2 * rand() - 1)) }];
  }));
}

test('gpt2-tiny: the folded weights pass the check, the unfolded interpolation fails it', async () => {
  const reference = hfFixture('gpt2-tiny');
  const a = await readLmWeights(path.join(reference, 'model.safetensors'));
  const b = perturbed(a, 5);
  const ids = tmp.file('ids.npy');
  const rand = mulberry32(3);
  writeTokensNpy(ids, Int32Array.from({ length: 8 * 16 }, () => Math.floor(rand() * 100)), 8, 16);
  const r = await repairedMerge(reference, new Map(a), new Map(b), 0.5, { data: { path: ids } }, ctx);
  assert.deepEqual({ ...r.info }, { sites: 2, data: ids, split: 'test', examples: 8 });
  const ok = r.check(r.tensors, 0);
  assert.equal(ok.ok, true, JSON.stringify(ok));
  const unfolded = r.check(interpolate(a, b, 0.5), 0);
  assert.equal(unfolded.ok, false, JSON.stringify(unfolded));
  assert.match(unfolded.message ?? '', /the written weights' outputs differ from the repaired model's/);
});

test('MLP classifier: the folded weights pass the check, the unfolded interpolation fails it', async () => {
  const widths = [8, 16, 12, 3];
  const a = randomMlp(widths, 1);
  const b = randomMlp(widths, 2);
  const reference = await writeMlp(tmp.file('a.safetensors'), a);
  const n = 64;
  const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.cos(i * 0.37) + Math.sin(i * 0.11));
  const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
  const data = tmp.file('data.safetensors');
  await writeSafetensors(data, [
    { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
  ]);
  const r = await repairedMerge(reference, new Map(a), new Map(b), 0.5, { data: { path: data } }, ctx);
  assert.deepEqual({ ...r.info }, { sites: 2, data, split: 'train', examples: n });
  assert.equal(r.check(r.tensors, 0).ok, true);
  assert.equal(r.check(interpolate(a, b, 0.5), 0).ok, false);
});
