/**
 * The health scan finds planted NaN, Inf, all-zero, constant and extreme tensors in F32, F16 and
 * BF16 (read in chunks of 5 elements), its statistics match a plain float64 reference, and the
 * real fixture of every dtype (single file and shards) scans alike.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeToFloat32, encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { EXTREME_ABS, scanCheckpoint, type CheckpointScan } from '../../../../src/core/scan';
import { tmpDirFor } from '../../helpers/tmp';

const FLUX = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml');

async function scanFile(file: string, chunkElements = 5): Promise<CheckpointScan> {
  const ck = await openCheckpoint(file);
  try {
    return await scanCheckpoint(ck, { chunkElements });
  } finally {
    await ck.close();
  }
}

function reference(x: Float32Array): { min: number; max: number; mean: number; std: number; nan: number; inf: number; zero: number } {
  const finite = Array.from(x).filter(Number.isFinite);
  const mean = finite.reduce((s, v) => s + v, 0) / finite.length;
  return {
    min: Math.min(...finite),
    max: Math.max(...finite),
    mean,
    std: Math.sqrt(finite.reduce((s, v) => s + (v - mean) ** 2, 0) / finite.length),
    nan: x.filter(Number.isNaN).length,
    inf: x.filter((v) => v === Infinity || v === -Infinity).length,
    zero: finite.filter((v) => v === 0).length,
  };
}

test('planted NaN, Inf and zero tensors are flagged in F32, F16 and BF16, with reference statistics', async (t) => {
  const dir = await tmpDirFor(t);
  const file = dir.file('planted.safetensors');
  const healthy = (seed: number) => Float32Array.from({ length: 23 }, (_, i) => Math.sin(i * 1.7 + seed) * 0.5);
  const planted: Record<string, Float32Array> = {
    nan: healthy(1).map((v, i) => (i === 11 ? Number.NaN : v)),
    inf: healthy(2).map((v, i) => (i === 3 ? -Infinity : i === 20 ? Infinity : v)),
    zero: new Float32Array(23),
    healthy: healthy(3),
    constant: new Float32Array(23).fill(0.5),
    extreme: healthy(4).map((v, i) => (i === 7 ? 3 * EXTREME_ABS : v)),
  };
  const sources = [];
  for (const dtype of ['F32', 'F16', 'BF16']) {
    for (const [kind, x] of Object.entries(planted)) sources.push({ name: `${dtype}.${kind}`, dtype, shape: [23], read: async () => encodeFromFloat32(dtype, x) });
  }
  await writeSafetensors(file, sources);
  const scan = await scanFile(file);
  const expectedFlags: Record<string, string[]> = { nan: ['nan'], inf: ['inf'], zero: ['all-zero'], healthy: [], constant: ['constant'], extreme: ['extreme'] };
  assert.equal(scan.tensors.length, 18);
  for (const s of scan.tensors) {
    const [dtype, kind] = s.name.split('.');
    assert.deepEqual(s.flags, expectedFlags[kind], s.name);
    // The reference reads the values as stored (F16/BF16 rounding included).
    const stored = decodeToFloat32(dtype, encodeFromFloat32(dtype, planted[kind]));
    const r = reference(stored);
    assert.equal(s.nanCount, r.nan, `${s.name} NaN`);
    assert.equal(s.infCount, r.inf, `${s.name} Inf`);
    assert.equal(s.zeroCount, r.zero, `${s.name} zeros`);
    assert.equal(s.min, r.min, `${s.name} min`);
    assert.equal(s.max, r.max, `${s.name} max`);
    assert.ok(Math.abs(s.mean - r.mean) <= 1e-12 * Math.max(1, Math.abs(r.mean)), `${s.name} mean ${s.mean} vs ${r.mean}`);
    assert.ok(Math.abs(s.std - r.std) <= 1e-9 * Math.max(1, r.std), `${s.name} std ${s.std} vs ${r.std}`);
    assert.equal(s.count, 23);
  }
  assert.equal(scan.flagged, 15);
  const byName = (x: { dtype: string }, y: { dtype: string }) => x.dtype.localeCompare(y.dtype);
  assert.deepEqual([...scan.dtypes].sort(byName), ['BF16', 'F16', 'F32'].map((dtype) => ({ dtype, tensors: 6, params: 138, bytes: 138 * (dtype === 'F32' ? 4 : 2) })));
});

test('extreme by spread: a std over 100 times the median std of the file', async (t) => {
  const dir = await tmpDirFor(t);
  const file = dir.file('spread.safetensors');
  const wave = (scale: number) => Float32Array.from({ length: 40 }, (_, i) => Math.sin(i) * scale);
  await writeSafetensors(file, [
    { name: 'a', dtype: 'F32', shape: [40], read: async () => encodeFromFloat32('F32', wave(0.01)) },
    { name: 'b', dtype: 'F32', shape: [40], read: async () => encodeFromFloat32('F32', wave(0.012)) },
    { name: 'c', dtype: 'F32', shape: [40], read: async () => encodeFromFloat32('F32', wave(0.011)) },
    { name: 'wide', dtype: 'F32', shape: [40], read: async () => encodeFromFloat32('F32', wave(50)) },
  ]);
  const scan = await scanFile(file);
  assert.deepEqual(scan.tensors.map((s) => [s.name, s.flags]), [['a', []], ['b', []], ['c', []], ['wide', ['extreme']]]);
  assert.ok(scan.tensors[3].max < EXTREME_ABS, 'flagged by its spread, not its size');
});

test('the real fixture of every dtype scans the same from the single file and its shards', async () => {
  const single = await scanFile(path.join(FLUX, 'non_sharded', 'model.safetensors'), 4);
  const sharded = await scanFile(path.join(FLUX, 'sharded', 'model.safetensors.index.json'), 1 << 20);
  assert.equal(single.tensors.length, 36);
  assert.deepEqual(sharded, single);
  // The fixture's bool tensors are all false (test/fixtures/safetensors/SOURCES.md: random torch values).
  assert.ok(single.tensors.filter((s) => s.dtype === 'BOOL').every((s) => s.flags.includes('all-zero')));
  assert.equal(single.dtypes.length, 12);
});
