/**
 * Tensor statistics for the inspector: exact against a float64 reference when the tensor is read
 * in many small chunks (single files and shards), progress in the user's words, and a cancel on a
 * sparse 10 GiB tensor that stops promptly with memory flat.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Progress } from '../../../../src/core/checkpoint';
import { decodeToFloat32, openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { tensorStatsHandler } from '../../../../src/engine/handlers/tensorStats';
import { isCancelled } from '../../../../src/engine/errors';
import { writeSparseCheckpoint, BIG_BYTES } from '../../helpers/sparseCheckpoint';
import { tmpDirFor } from '../../helpers/tmp';

const SHARDED = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml', 'sharded', 'model.safetensors.index.json');

function ctx(signal = new AbortController().signal, progress: Progress[] = []) {
  return { signal, onProgress: (p: Progress) => progress.push(p), log: () => undefined };
}

/** The plain reference: float64 moments and numpy-style histogram over the finite values. */
function reference(x: Float32Array, bins: number) {
  const v = Array.from(x).filter(Number.isFinite);
  const min = Math.min(...v);
  const max = Math.max(...v);
  const mean = v.reduce((s, a) => s + a, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, a) => s + (a - mean) ** 2, 0) / v.length);
  const lo = min === max ? min - 0.5 : min;
  const hi = min === max ? max + 0.5 : max;
  const counts = new Array<number>(bins).fill(0);
  for (const a of v) counts[Math.min(bins - 1, Math.max(0, Math.floor(((a - lo) / (hi - lo)) * bins)))]++;
  return { min, max, mean, std, counts, nan: x.filter(Number.isNaN).length };
}

test('chunked reads give the reference statistics (F32 and F16, chunks of 40 bytes up to the whole tensor)', async (t) => {
  const dir = await tmpDirFor(t);
  const n = 10_007;
  const x = new Float32Array(n).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 3);
  x[17] = Number.NaN;
  x[99] = Infinity;
  const bytes = (dtype: string) => async () => {
    const { encodeFromFloat32 } = await import('../../../../src/core/safetensors');
    return encodeFromFloat32(dtype, x);
  };
  const file = dir.file('m.safetensors');
  await writeSafetensors(file, [
    { name: 'first', dtype: 'F32', shape: [3], read: async () => new Uint8Array(12) },
    { name: 'w32', dtype: 'F32', shape: [n], read: bytes('F32') },
    { name: 'w16', dtype: 'F16', shape: [n], read: bytes('F16') },
  ]);
  const ck = await openCheckpoint(file);
  for (const dtype of ['w32', 'w16']) {
    const stored = decodeToFloat32(ck.get(dtype)!.dtype, await ck.readRaw(dtype));
    const want = reference(stored, 16);
    for (const chunk of [40, 1000, 4096, 1 << 26]) {
      const r = await tensorStatsHandler({ kind: 'tensorStats', path: file, tensor: dtype, bins: 16 }, ctx(), chunk);
      assert.equal(r.count, n);
      assert.equal(r.nanCount, 1);
      assert.equal(r.infCount, 1);
      assert.equal(r.min, want.min);
      assert.equal(r.max, want.max);
      assert.ok(Math.abs(r.mean - want.mean) < 1e-9, `${dtype} chunk ${chunk}: mean`);
      assert.ok(Math.abs(r.std - want.std) < 1e-9, `${dtype} chunk ${chunk}: std`);
      assert.deepEqual(r.histogram.counts, want.counts, `${dtype} chunk ${chunk}: histogram`);
    }
  }
  await ck.close();
});

test('a tensor in a shard is read from its shard at the right offset', async () => {
  const ck = await openCheckpoint(SHARDED);
  try {
    for (const name of ['float32_357', 'float64_357', 'bfloat16_357', 'int16_357']) {
      const info = ck.get(name)!;
      const want = reference(decodeToFloat32(info.dtype, await ck.readRaw(name)), 8);
      const r = await tensorStatsHandler({ kind: 'tensorStats', path: SHARDED, tensor: name, bins: 8 }, ctx(), 64);
      assert.equal(r.min, want.min, name);
      assert.equal(r.max, want.max, name);
      assert.deepEqual(r.histogram.counts, want.counts, name);
    }
  } finally {
    await ck.close();
  }
});

test('progress says how much of the tensor has been read, in both passes', async (t) => {
  const dir = await tmpDirFor(t);
  const file = dir.file('p.safetensors');
  const x = new Float32Array(4096).map((_, i) => i);
  await writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [4096], read: async () => new Uint8Array(x.buffer) }]);
  const progress: Progress[] = [];
  await tensorStatsHandler({ kind: 'tensorStats', path: file, tensor: 'w', bins: 4 }, ctx(undefined, progress), 4096);
  assert.deepEqual(progress.map((p) => p.message), [
    'Statistics (pass 1 of 2): 4.1 kB of 16.4 kB read',
    'Statistics (pass 1 of 2): 8.2 kB of 16.4 kB read',
    'Statistics (pass 1 of 2): 12.3 kB of 16.4 kB read',
    'Statistics (pass 1 of 2): 16.4 kB of 16.4 kB read',
    'Histogram (pass 2 of 2): 4.1 kB of 16.4 kB read',
    'Histogram (pass 2 of 2): 8.2 kB of 16.4 kB read',
    'Histogram (pass 2 of 2): 12.3 kB of 16.4 kB read',
    'Histogram (pass 2 of 2): 16.4 kB of 16.4 kB read',
  ]);
  assert.deepEqual(progress.map((p) => p.fraction), [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]);
});

test('cancelling statistics of a sparse 10 GiB tensor stops within a second, memory flat', async (t) => {
  const dir = await tmpDirFor(t);
  const file = dir.file('sparse.safetensors');
  writeSparseCheckpoint(file);
  const abort = new AbortController();
  const progress: Progress[] = [];
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const running = tensorStatsHandler({ kind: 'tensorStats', path: file, tensor: 'big', bins: 64 }, {
    signal: abort.signal,
    onProgress: (p) => {
      progress.push(p);
      // Cancel once 256 MiB have been read: well past the first chunks.
      if ((p.fraction ?? 0) * 2 * BIG_BYTES >= 2 ** 28 && !abort.signal.aborted) abort.abort();
    },
    log: () => undefined,
  });
  let cancelledAt = 0;
  abort.signal.addEventListener('abort', () => (cancelledAt = Date.now()));
  await assert.rejects(running, (e: unknown) => isCancelled(e));
  const stopMs = Date.now() - cancelledAt;
  clearInterval(sampler);
  const grown = (peak - rss0) / 2 ** 20;
  console.log(`[tensorStats] cancelled after ${progress.at(-1)?.message}; stopped ${stopMs} ms after the cancel; RSS grew ${grown.toFixed(0)} MiB`);
  assert.ok(stopMs < 1000, `stopped ${stopMs} ms after the cancel`);
  assert.ok(grown < 200, `RSS grew ${grown.toFixed(0)} MiB reading 256 MiB of a 10 GiB tensor`);
  assert.match(progress.at(-1)?.message ?? '', /^Statistics \(pass 1 of 2\): 268 MB of 10\.7 GB read$/);
});
