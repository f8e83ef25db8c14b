/**
 * A diff's tensor picture against a plain reference: histograms of A and B over one shared range,
 * |A−B| reduced by block max (read in chunks of 5 elements, so chunks straddle rows and blocks),
 * π(B)'s picture equal to the picture of B permuted by hand, F16 values, and refusals of
 * vectors and shape mismatches naming the tensor.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tensorPicture } from '../../../../src/core/diff';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { tmpDirFor } from '../../helpers/tmp';

type Entry = { name: string; dtype: string; shape: number[]; values: Float32Array };

async function write(file: string, entries: Entry[]): Promise<void> {
  await writeSafetensors(file, entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, read: async () => encodeFromFloat32(e.dtype, e.values) })));
}

async function picture(a: string, b: string, name: string, opts: Parameters<typeof tensorPicture>[3] = {}) {
  const [x, y] = [await openCheckpoint(a), await openCheckpoint(b)];
  try {
    return await tensorPicture(x, y, name, opts);
  } finally {
    await x.close();
    await y.close();
  }
}

/** numpy.histogram over [lo, hi] with `bins` bins, the last closed on the right. */
function referenceHistogram(values: number[], lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    let k = Math.floor(((v - lo) / (hi - lo)) * bins);
    if (v === hi) k = bins - 1;
    counts[k]++;
  }
  return counts;
}

/** Block max of |A−B| over an r × c matrix, blocks of br × bc. */
function referenceBlocks(a: number[], b: number[], r: number, c: number, br: number, bc: number): number[] {
  const rows = Math.ceil(r / br);
  const cols = Math.ceil(c / bc);
  const out = new Array<number>(rows * cols).fill(-Infinity);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) {
    const o = Math.floor(i / br) * cols + Math.floor(j / bc);
    out[o] = Math.max(out[o], Math.abs(a[i * c + j] - b[i * c + j]));
  }
  return out;
}

test('histograms share one range; |A−B| is the block max of each cell (7 × 10 at most 3 a side)', async (t) => {
  const dir = await tmpDirFor(t);
  const n = 70;
  const av = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3));
  const bv = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) + (i === 23 ? 2 : 0.01 * Math.cos(i)));
  await write(dir.file('a.safetensors'), [{ name: 'w', dtype: 'F32', shape: [7, 10], values: av }]);
  await write(dir.file('b.safetensors'), [{ name: 'w', dtype: 'F32', shape: [7, 10], values: bv }]);
  const p = await picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'w', { bins: 8, maxSide: 3, chunkElements: 5 });
  const a = [...av];
  const b = [...bv];
  const lo = Math.min(...a, ...b);
  const hi = Math.max(...a, ...b);
  assert.equal(p.histogramA.edges[0], lo);
  assert.equal(p.histogramA.edges[8], hi);
  assert.deepEqual(p.histogramA.edges, p.histogramB.edges);
  assert.deepEqual(p.histogramA.counts, referenceHistogram(a, lo, hi, 8));
  assert.deepEqual(p.histogramB.counts, referenceHistogram(b, lo, hi, 8));
  assert.deepEqual([p.heatmap.rows, p.heatmap.cols, p.heatmap.blockRows, p.heatmap.blockCols], [3, 3, 3, 4]);
  assert.deepEqual(p.heatmap.values, referenceBlocks(a, b, 7, 10, 3, 4));
  // The one large change (element 23: row 2, column 3) is the top-left cell's maximum.
  assert.equal(p.heatmap.values.indexOf(Math.max(...(p.heatmap.values as number[]))), 0);
  assert.deepEqual(p.shape, [7, 10]);
});

test('π(B): the picture of B permuted by hand; F16 read as stored; conv kernels as rows × the rest', async (t) => {
  const dir = await tmpDirFor(t);
  const w = Float32Array.from({ length: 3 * 2 * 2 }, (_, i) => (i - 6) / 4);
  const bw = w.map((v, i) => v + (i % 3) * 0.25);
  const perm = Int32Array.of(2, 0, 1);
  const rowsOf = (x: Float32Array, cols: number) => Float32Array.from({ length: x.length }, (_, i) => x[perm[Math.floor(i / cols)] * cols + (i % cols)]);
  await write(dir.file('a.safetensors'), [{ name: 'conv', dtype: 'F16', shape: [3, 2, 2], values: w }]);
  await write(dir.file('b.safetensors'), [{ name: 'conv', dtype: 'F16', shape: [3, 2, 2], values: bw }]);
  await write(dir.file('pib.safetensors'), [{ name: 'conv', dtype: 'F16', shape: [3, 2, 2], values: rowsOf(bw, 4) }]);
  const aligned = await picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'conv', { permutations: [perm, null, null], chunkElements: 5 });
  const byHand = await picture(dir.file('a.safetensors'), dir.file('pib.safetensors'), 'conv', { chunkElements: 5 });
  assert.deepEqual(aligned, byHand);
  assert.deepEqual([aligned.heatmap.rows, aligned.heatmap.cols, aligned.heatmap.blockRows], [3, 4, 1]);
  // Quarters are exact in F16: one cell per element, |A−π(B)| exactly.
  assert.deepEqual(aligned.heatmap.values, referenceBlocks([...w], [...rowsOf(bw, 4)], 3, 4, 1, 1));
  const naive = await picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'conv');
  assert.notDeepEqual(naive.heatmap.values, aligned.heatmap.values);
});

test('NaN pairs leave their cell empty (null) and out of the histograms; vectors, empty tensors and shape mismatches are refused by name', async (t) => {
  const dir = await tmpDirFor(t);
  await write(dir.file('a.safetensors'), [
    { name: 'm', dtype: 'F32', shape: [2, 2], values: Float32Array.of(1, Number.NaN, 3, 4) },
    { name: 'v', dtype: 'F32', shape: [2], values: Float32Array.of(1, 2) },
    { name: 's', dtype: 'F32', shape: [2, 2], values: Float32Array.of(1, 2, 3, 4) },
    { name: 'e', dtype: 'F32', shape: [0, 3], values: new Float32Array(0) },
  ]);
  await write(dir.file('b.safetensors'), [
    { name: 'e', dtype: 'F32', shape: [0, 3], values: new Float32Array(0) },
    { name: 'm', dtype: 'F32', shape: [2, 2], values: Float32Array.of(1, 2, 3, 5) },
    { name: 'v', dtype: 'F32', shape: [2], values: Float32Array.of(1, 2) },
    { name: 's', dtype: 'F32', shape: [4, 1], values: Float32Array.of(1, 2, 3, 4) },
  ]);
  const p = await picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'm', { bins: 4 });
  assert.deepEqual(p.heatmap.values, [0, null, 0, 1]);
  assert.equal(p.histogramA.counts.reduce((s, c) => s + c, 0), 3);
  assert.equal(p.histogramB.counts.reduce((s, c) => s + c, 0), 4);
  await assert.rejects(picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'v'), /tensor `v` has 1 axis; a picture needs 2 or more/);
  await assert.rejects(picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 's'), /tensor `s` has shape \[4, 1\], A's is \[2, 2\]/);
  await assert.rejects(picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'e'), /tensor `e` has no values \(shape \[0, 3\]\)/);
  await assert.rejects(picture(dir.file('a.safetensors'), dir.file('b.safetensors'), 'nope'), /tensor `nope` not found/);
});
