/**
 * Checkpoint diff against a plain float64 reference: every dtype of the real fluxml fixture (read
 * in chunks of 7 elements, so every tensor spans several chunks), dtype and shape mismatches,
 * tensors on one side only, totals and layers consistent with the tensors, sharded input, and
 * π(B) figures equal to a diff against B permuted by hand.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Checkpoint } from '../../../../src/core/checkpoint';
import { diffCheckpoints, layerGroupOf, type DiffFigures, type GroupDiff } from '../../../../src/core/diff';
import { e4m3fnToFloat, e5m2ToFloat, halfToFloat } from '../../../../src/core/safetensors/float-formats';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { tmpDirFor } from '../../helpers/tmp';

const FLUX = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml');
const SINGLE = path.join(FLUX, 'non_sharded', 'model.safetensors');
const SHARDED = path.join(FLUX, 'sharded', 'model.safetensors.index.json');

/** One element of raw little-endian bytes as a number, by the safetensors dtype (plain DataView reads). */
function referenceValues(dtype: string, bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width: Record<string, number> = { BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 };
  const w = width[dtype];
  const out: number[] = [];
  for (let at = 0; at < bytes.length; at += w) {
    switch (dtype) {
      case 'BOOL': out.push(view.getUint8(at) ? 1 : 0); break;
      case 'U8': out.push(view.getUint8(at)); break;
      case 'I8': out.push(view.getInt8(at)); break;
      case 'F8_E4M3': out.push(e4m3fnToFloat(view.getUint8(at))); break;
      case 'F8_E5M2': out.push(e5m2ToFloat(view.getUint8(at))); break;
      case 'I16': out.push(view.getInt16(at, true)); break;
      case 'U16': out.push(view.getUint16(at, true)); break;
      case 'F16': out.push(halfToFloat(view.getUint16(at, true))); break;
      case 'BF16': {
        const f = new DataView(new ArrayBuffer(4));
        f.setUint32(0, view.getUint16(at, true) << 16);
        out.push(f.getFloat32(0));
        break;
      }
      case 'I32': out.push(view.getInt32(at, true)); break;
      case 'U32': out.push(view.getUint32(at, true)); break;
      case 'F32': out.push(view.getFloat32(at, true)); break;
      case 'F64': out.push(view.getFloat64(at, true)); break;
      case 'I64': out.push(Number(view.getBigInt64(at, true))); break;
      case 'U64': out.push(Number(view.getBigUint64(at, true))); break;
      default: throw new Error(`no reference for ${dtype}`);
    }
  }
  return out;
}

/** The figures by their definitions, over the finite pairs. */
function referenceFigures(a: number[], b: number[]): DiffFigures {
  let aa = 0;
  let bb = 0;
  let ab = 0;
  let dd = 0;
  let maxAbs = 0;
  let nonFinite = 0;
  a.forEach((x, i) => {
    const y = b[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      nonFinite++;
      return;
    }
    aa += x * x;
    bb += y * y;
    ab += x * y;
    dd += (x - y) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(x - y));
  });
  const l2 = Math.sqrt(dd);
  return {
    l2,
    relative: aa > 0 ? l2 / Math.sqrt(aa) : l2 === 0 ? 0 : null,
    cosine: aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : null,
    maxAbs,
    nonFinite,
  };
}

function close(actual: number | null, expected: number | null, what: string): void {
  if (expected === null || actual === null) return assert.equal(actual, expected, what);
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

function assertFigures(actual: DiffFigures, expected: DiffFigures, what: string): void {
  close(actual.l2, expected.l2, `${what} l2`);
  close(actual.relative, expected.relative, `${what} relative`);
  close(actual.cosine, expected.cosine, `${what} cosine`);
  assert.equal(actual.maxAbs, expected.maxAbs, `${what} maxAbs`);
  assert.equal(actual.nonFinite, expected.nonFinite, `${what} nonFinite`);
}

/** Elements in reverse order: the same dtype and values, a different tensor. */
function reversedElements(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const n = bytes.length / width;
  for (let i = 0; i < n; i++) out.set(bytes.subarray(i * width, (i + 1) * width), (n - 1 - i) * width);
  return out;
}

async function withOpen<T>(paths: string[], fn: (...cks: Checkpoint[]) => Promise<T>): Promise<T> {
  const cks = await Promise.all(paths.map((p) => openCheckpoint(p)));
  try {
    return await fn(...cks);
  } finally {
    await Promise.all(cks.map((c) => c.close()));
  }
}

/** Totals and layers are the tensors' sums: l2² adds up, and so do ||A||² and <A, B> behind relative and cosine. */
function assertConsistent(tensors: readonly (DiffFigures & { name: string })[], layers: readonly GroupDiff[], totals: GroupDiff): void {
  const sq = (xs: readonly DiffFigures[]): number => xs.reduce((s, x) => s + x.l2 ** 2, 0);
  close(totals.l2 ** 2, sq(tensors), 'total l2² = sum of tensor l2²');
  assert.equal(totals.tensors, tensors.length);
  close(sq(layers), sq(tensors), 'layer l2² add up to the total');
  assert.equal(layers.reduce((s, l) => s + l.tensors, 0), tensors.length);
  assert.equal(totals.maxAbs, Math.max(0, ...tensors.map((t) => t.maxAbs)));
  for (const layer of layers) {
    const members = tensors.filter((t) => layerGroupOf(t.name) === layer.name);
    assert.equal(members.length, layer.tensors, layer.name);
    close(layer.l2 ** 2, sq(members), `${layer.name} l2²`);
  }
}

test('every dtype against the float64 reference, read in chunks of 7 elements; mismatches and one-sided tensors listed', async (t) => {
  const dir = await tmpDirFor(t);
  const bFile = dir.file('b.safetensors');
  const { dtypes, expected } = await withOpen([SINGLE], async (a) => {
    const expected = new Map<string, DiffFigures>();
    const sources = [];
    for (const info of a.tensors) {
      const raw = await a.readRaw(info.name);
      if (info.name === 'float32_35') {
        // Stored as F64 in B: a dtype mismatch, still compared (value + 0.25, exact in float64).
        const values = referenceValues('F32', raw).map((x) => x + 0.25);
        sources.push({ name: info.name, dtype: 'F64', shape: info.shape, read: async () => new Uint8Array(Float64Array.from(values).buffer) });
        expected.set(info.name, referenceFigures(referenceValues('F32', raw), values));
        continue;
      }
      if (info.name === 'int32_35') {
        sources.push({ name: info.name, dtype: 'I32', shape: [5, 3], read: async () => raw }); // shape differs: listed, not compared
        continue;
      }
      if (info.name === 'int8_3') continue; // only in A
      const width = info.byteLength / info.shape.reduce((p, d) => p * d, 1);
      const rev = reversedElements(raw, width);
      sources.push({ name: info.name, dtype: info.dtype, shape: info.shape, read: async () => rev });
      expected.set(info.name, referenceFigures(referenceValues(info.dtype, raw), referenceValues(info.dtype, rev)));
    }
    sources.push({ name: 'extra.weight', dtype: 'F32', shape: [2], read: async () => encodeFromFloat32('F32', Float32Array.of(1, 2)) });
    await writeSafetensors(bFile, sources);
    return { dtypes: new Set(a.tensors.map((x) => x.dtype)), expected };
  });
  for (const d of ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2']) assert.ok(dtypes.has(d), `fixture has ${d}`);

  const diff = await withOpen([SINGLE, bFile], (a, b) => diffCheckpoints(a, b, { chunkElements: 7 }));
  assert.deepEqual(diff.onlyInA, ['int8_3']);
  assert.deepEqual(diff.onlyInB, ['extra.weight']);
  assert.deepEqual(diff.mismatches, [
    { name: 'float32_35', shapeA: [3, 5], shapeB: [3, 5], dtypeA: 'F32', dtypeB: 'F64', compared: true },
    { name: 'int32_35', shapeA: [3, 5], shapeB: [5, 3], dtypeA: 'I32', dtypeB: 'I32', compared: false },
  ]);
  assert.deepEqual(diff.skipped, []);
  assert.equal(diff.tensors.length, expected.size);
  for (const tensor of diff.tensors) assertFigures(tensor, expected.get(tensor.name)!, tensor.name);
  assert.equal(diff.tensors.find((x) => x.name === 'float32_35')!.dtypeB, 'F64');
  // The fixture's random values move when reversed (its bool tensors are all false).
  assert.ok(diff.tensors.filter((x) => x.name.endsWith('_357') && !x.name.startsWith('bool')).every((x) => x.l2 > 0));
  assertConsistent(diff.tensors, diff.layers, diff.totals);
  assert.equal(diff.aligned, undefined);
});

test('a sharded checkpoint against the single file holding the same bytes: all zero, cosine 1', async () => {
  const diff = await withOpen([SINGLE, SHARDED], (a, b) => diffCheckpoints(a, b, { chunkElements: 5 }));
  assert.equal(diff.tensors.length, 36);
  assert.deepEqual([diff.onlyInA, diff.onlyInB, diff.mismatches], [[], [], []]);
  for (const x of diff.tensors) {
    assert.equal(x.l2, 0, x.name);
    assert.equal(x.maxAbs, 0, x.name);
  }
  assert.equal(diff.totals.l2, 0);
  assert.equal(diff.totals.relative, 0);
  close(diff.totals.cosine, 1, 'total cosine');
});

test('π(B) figures equal a diff against B permuted by hand; unmoved tensors keep their naive figures; NaN pairs left out', async (t) => {
  const dir = await tmpDirFor(t);
  const w0 = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1));
  const b0 = Float32Array.of(0.5, -1, 2);
  const w1 = Float32Array.from({ length: 6 }, (_, i) => Math.cos(i));
  const p = Int32Array.of(2, 0, 1);
  // π(B): rows of layers.0.weight [3, 4] and layers.0.bias, columns of layers.1.weight [2, 3], gathered by p.
  const gatherRows = (x: Float32Array, cols: number) => Float32Array.from({ length: x.length }, (_, i) => x[p[Math.floor(i / cols)] * cols + (i % cols)]);
  const gatherCols = (x: Float32Array, cols: number) => Float32Array.from({ length: x.length }, (_, i) => x[Math.floor(i / cols) * cols + p[i % cols]]);
  const nan = Float32Array.of(1, Number.NaN, 3);
  const write = (file: string, t0: Float32Array, tb: Float32Array, t1: Float32Array, other: Float32Array) =>
    writeSafetensors(file, [
      { name: 'layers.0.weight', dtype: 'F32', shape: [3, 4], read: async () => encodeFromFloat32('F32', t0) },
      { name: 'layers.0.bias', dtype: 'F32', shape: [3], read: async () => encodeFromFloat32('F32', tb) },
      { name: 'layers.1.weight', dtype: 'F32', shape: [2, 3], read: async () => encodeFromFloat32('F32', t1) },
      { name: 'other', dtype: 'F32', shape: [3], read: async () => encodeFromFloat32('F32', other) },
    ]);
  const a = dir.file('a.safetensors');
  const b = dir.file('b.safetensors');
  const piB = dir.file('pib.safetensors');
  const shift = (x: Float32Array, s: number) => x.map((v, i) => v + s * ((i % 3) - 1));
  await write(a, w0, b0, w1, Float32Array.of(1, 2, 3));
  const [bw0, bb0, bw1] = [shift(w0, 0.1), shift(b0, 0.2), shift(w1, 0.3)];
  await write(b, bw0, bb0, bw1, nan);
  await write(piB, gatherRows(bw0, 4), gatherRows(bb0, 1), gatherCols(bw1, 3), nan);
  const axes: Record<string, (Int32Array | null)[]> = { 'layers.0.weight': [p, null], 'layers.0.bias': [p], 'layers.1.weight': [null, p] };
  const both = await withOpen([a, b], (x, y) => diffCheckpoints(x, y, { chunkElements: 2, permutationsOf: (name, rank) => axes[name] ?? new Array(rank).fill(null) }));
  const byHand = await withOpen([a, piB], (x, y) => diffCheckpoints(x, y, { chunkElements: 2 }));
  assert.ok(both.aligned);
  assert.deepEqual(both.aligned.tensors, byHand.tensors);
  assert.deepEqual(both.aligned.totals, byHand.totals);
  assert.deepEqual(both.aligned.layers, byHand.layers);
  assert.deepEqual(both.aligned.tensors.find((x) => x.name === 'other'), both.tensors.find((x) => x.name === 'other'));
  assert.notDeepEqual(both.aligned.totals, both.totals);
  const other = both.tensors.find((x) => x.name === 'other')!;
  assert.equal(other.nonFinite, 1);
  assertFigures(other, referenceFigures([1, 2, 3], [1, Number.NaN, 3]), 'other');
  assert.deepEqual(both.layers.map((l) => l.name), ['layers.0', 'layers.1', 'other']);
  assertConsistent(both.aligned.tensors, both.aligned.layers, both.aligned.totals);
});

test('layer groups: up to the first numeric segment, else the module', () => {
  assert.equal(layerGroupOf('model.layers.3.mlp.up_proj.weight'), 'model.layers.3');
  assert.equal(layerGroupOf('layer1.0.conv1.weight'), 'layer1.0');
  assert.equal(layerGroupOf('fc1.weight'), 'fc1');
  assert.equal(layerGroupOf('model.embed_tokens.weight'), 'model.embed_tokens');
  assert.equal(layerGroupOf('bias'), 'bias');
});
