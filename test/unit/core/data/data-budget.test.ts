/**
 * Data sets and token data inside the memory plan (src/core/data): every reader checks headers,
 * declared shapes and the pairing of images with labels, and plans the bytes against the memory
 * budget, before any bulk read or decompression. A compressed stream here has a wrong CRC-32:
 * had the reader inflated it, it would refuse it as damaged, so a refusal for another reason
 * shows nothing was inflated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError, loadDataset, loadTokenData } from '../../../../src/core/data';
import { SafetensorsError } from '../../../../src/core/safetensors';
import { compressedZeros, idxHeader, npyBytes, rawSafetensors, sparseFile, zipBytes } from '../../helpers/dataFiles';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-data-budget-');
});
after(async () => {
  await tmp.remove();
});

const MiB = 1024 * 1024;
/** 6,250,000 images of 4x4 bytes: 100 MB that compress to about 100 kB. */
const MANY = 6_250_000;
const MODEL = { vocab: 1000, maxPositions: 1024, source: 'config.json' };

/** A folder for one case, with `files` written into it. */
function folder(name: string, files: Record<string, Uint8Array>): string {
  const dir = tmp.file(name);
  fs.mkdirSync(dir);
  for (const [f, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), bytes);
  return dir;
}

/** A gzip stream whose trailer CRC-32 is wrong: inflating it whole fails. */
async function gzipWithBadCrc(prefix: Uint8Array, zeros: number): Promise<Buffer> {
  const gz = await compressedZeros('gzip', prefix, zeros);
  gz[gz.length - 8] ^= 0xff;
  return gz;
}

/** Asserts a one-line DataError of `kind` whose message starts with `file` and matches `problem`. */
async function refused(p: Promise<unknown>, kind: string, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.ok(e.message.startsWith(`${file}: `), `message should start with ${file}: ${e.message}`);
    assert.match(e.message, problem);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

const OVER_BUDGET = /needs \d[\d.]* [kMG]B, over the memory budget of 16\.8 MB/;

test('IDX .gz: an empty labels file is refused before the images are inflated', async () => {
  const dir = folder('gz-empty-labels', {
    't10k-images-idx3-ubyte.gz': await gzipWithBadCrc(idxHeader([MANY, 4, 4]), MANY * 16),
    't10k-labels-idx1-ubyte': new Uint8Array(0),
  });
  await refused(loadDataset({ path: dir }, 'test'), 'Corrupt', path.join(dir, 't10k-labels-idx1-ubyte'), /data file is empty \(0 bytes\)/);
});

test('IDX .gz: labels that do not pair with the images are refused before the images are inflated', async () => {
  const dir = folder('gz-count', {
    't10k-images-idx3-ubyte.gz': await gzipWithBadCrc(idxHeader([MANY, 4, 4]), MANY * 16),
    't10k-labels-idx1-ubyte': Buffer.concat([idxHeader([10]), Buffer.alloc(10)]),
  });
  await refused(loadDataset({ path: dir }, 'test'), 'CountMismatch', path.join(dir, 't10k-labels-idx1-ubyte'), /10 labels for 6250000 images in t10k-images-idx3-ubyte\.gz/);
});

test('IDX .gz declaring more than the memory budget is refused from its header, naming the file, the bytes and the budget', async () => {
  const dir = folder('gz-budget', {
    't10k-images-idx3-ubyte.gz': await gzipWithBadCrc(idxHeader([MANY, 4, 4]), MANY * 16),
    't10k-labels-idx1-ubyte.gz': await compressedZeros('gzip', idxHeader([MANY]), MANY),
  });
  await refused(loadDataset({ path: dir }, 'test', { budget: 16 * MiB }), 'OverBudget', path.join(dir, 't10k-images-idx3-ubyte.gz'), OVER_BUDGET);
  // The same files within the budget: read, and only then found damaged.
  await refused(loadDataset({ path: dir, limit: 10 }, 'test', { budget: 4096 * MiB }), 'Corrupt', path.join(dir, 't10k-images-idx3-ubyte.gz'), /gzip data is damaged/);
});

test('plain IDX, .npy and safetensors data over the memory budget are refused from their headers', async () => {
  const n = 10_000_000;
  const dir = tmp.file('plain-idx');
  fs.mkdirSync(dir);
  sparseFile(path.join(dir, 't10k-images-idx3-ubyte'), 16 + n * 4, idxHeader([n, 2, 2]));
  sparseFile(path.join(dir, 't10k-labels-idx1-ubyte'), 8 + n, idxHeader([n]));
  await refused(loadDataset({ path: dir }, 'test', { budget: 16 * MiB }), 'OverBudget', path.join(dir, 't10k-images-idx3-ubyte'), OVER_BUDGET);

  const images = tmp.file('big_images.npy');
  const head = npyBytes('|u1', [n, 2, 2], new Uint8Array(0));
  sparseFile(images, head.length + n * 4, head);
  const labelsHead = npyBytes('|u1', [n], new Uint8Array(0));
  sparseFile(tmp.file('big_labels.npy'), labelsHead.length + n, labelsHead);
  await refused(loadDataset({ path: images }, 'test', { budget: 16 * MiB }), 'OverBudget', images, OVER_BUDGET);

  const st = tmp.file('big.safetensors');
  rawSafetensors(st, { x: { dtype: 'U8', shape: [n, 2, 2], data_offsets: [0, n * 4] }, y: { dtype: 'U8', shape: [n], data_offsets: [n * 4, n * 5] } });
  fs.truncateSync(st, fs.statSync(st).size + n * 5);
  await refused(loadDataset({ path: st }, 'test', { budget: 16 * MiB }), 'OverBudget', `${st}:x`, OVER_BUDGET);
});

test('IDX .gz: examples that do not fit the model input are refused before the images are inflated', async () => {
  const dir = folder('gz-input', {
    't10k-images-idx3-ubyte.gz': await gzipWithBadCrc(idxHeader([MANY, 4, 4]), MANY * 16),
    't10k-labels-idx1-ubyte.gz': await compressedZeros('gzip', idxHeader([MANY]), MANY),
  });
  await refused(loadDataset({ path: dir }, 'test', { inputShape: [784] }), 'BadShape', path.join(dir, 't10k-images-idx3-ubyte.gz'), /examples have 16 features \(\[4, 4\]\) but the model's input takes 784 \(\[784\]\)/);
});

test('.npz (deflated): mismatched labels and an over-budget archive are refused before any entry is inflated', async () => {
  // zipBytes leaves every CRC-32 at 0: an entry inflated whole would fail its check.
  const x = await compressedZeros('deflate-raw', npyBytes('|u1', [MANY, 4, 4], new Uint8Array(0)), MANY * 16);
  const xSize = npyBytes('|u1', [MANY, 4, 4], new Uint8Array(0)).length + MANY * 16;
  const shortY = npyBytes('|u1', [5], new Uint8Array(5));
  const mismatch = tmp.file('mismatch.npz');
  fs.writeFileSync(mismatch, zipBytes([{ name: 'x.npy', stored: x, method: 8, size: xSize }, { name: 'y.npy', stored: shortY, method: 0, size: shortY.length }]));
  await refused(loadDataset({ path: mismatch }, 'test'), 'CountMismatch', `${mismatch}:y`, /5 labels for 6250000 images in x/);

  const y = await compressedZeros('deflate-raw', npyBytes('|u1', [MANY], new Uint8Array(0)), MANY);
  const ySize = npyBytes('|u1', [MANY], new Uint8Array(0)).length + MANY;
  const big = tmp.file('big.npz');
  fs.writeFileSync(big, zipBytes([{ name: 'x.npy', stored: x, method: 8, size: xSize }, { name: 'y.npy', stored: y, method: 8, size: ySize }]));
  await refused(loadDataset({ path: big }, 'test', { budget: 16 * MiB }), 'OverBudget', `${big}:x`, OVER_BUDGET);
});

test('token files (.npy, .npz, .safetensors) over the memory budget are refused from their headers', async () => {
  const [n, t] = [20_000, 512];
  const npy = tmp.file('tokens.npy');
  const head = npyBytes('<i4', [n, t], new Uint8Array(0));
  sparseFile(npy, head.length + n * t * 4, head);
  await refused(loadTokenData({ path: npy }, MODEL, 16 * MiB), 'OverBudget', npy, /reading 20000 sequences of 512 tokens needs 49\.3 MB, over the memory budget of 16\.8 MB/);

  const npz = tmp.file('tokens.npz');
  const ids = await compressedZeros('deflate-raw', head, n * t * 4);
  fs.writeFileSync(npz, zipBytes([{ name: 'input_ids.npy', stored: ids, method: 8, size: head.length + n * t * 4 }]));
  await refused(loadTokenData({ path: npz }, MODEL, 16 * MiB), 'OverBudget', `${npz}:input_ids`, /reading 20000 sequences of 512 tokens needs \d[\d.]* MB, over the memory budget of 16\.8 MB/);

  const st = tmp.file('tokens.safetensors');
  rawSafetensors(st, { input_ids: { dtype: 'I32', shape: [n, t], data_offsets: [0, n * t * 4] } });
  fs.truncateSync(st, fs.statSync(st).size + n * t * 4);
  await refused(loadTokenData({ path: st }, MODEL, 16 * MiB), 'OverBudget', st, /reading 20000 sequences of 512 tokens needs 49\.3 MB/);
  // Within the budget, a limit reads only the rows asked for.
  const few = await loadTokenData({ path: st, limit: 3 }, MODEL, 16 * MiB);
  assert.deepEqual([few.n, few.t], [3, 512]);
});

test('empty data files are refused in one line naming them', async () => {
  const labels = Buffer.concat([idxHeader([2]), Buffer.alloc(2)]);
  const noImages = folder('empty-images', { 't10k-images-idx3-ubyte': new Uint8Array(0), 't10k-labels-idx1-ubyte': labels });
  await refused(loadDataset({ path: noImages }, 'test'), 'Corrupt', path.join(noImages, 't10k-images-idx3-ubyte'), /data file is empty \(0 bytes\)/);
  fs.writeFileSync(tmp.file('empty_images.npy'), new Uint8Array(0));
  fs.writeFileSync(tmp.file('empty_labels.npy'), npyBytes('|u1', [0], new Uint8Array(0)));
  await refused(loadDataset({ path: tmp.file('empty_images.npy') }, 'test'), 'Corrupt', tmp.file('empty_images.npy'), /data file is empty \(0 bytes\)/);
  fs.writeFileSync(tmp.file('empty.npz'), new Uint8Array(0));
  await refused(loadDataset({ path: tmp.file('empty.npz') }, 'test'), 'Corrupt', tmp.file('empty.npz'), /data file is empty \(0 bytes\)/);
  fs.writeFileSync(tmp.file('empty.safetensors'), new Uint8Array(0));
  await assert.rejects(loadDataset({ path: tmp.file('empty.safetensors') }, 'test'), (e: unknown) => e instanceof SafetensorsError && e.message === 'empty.safetensors: file is 0 bytes, shorter than the 8-byte header length');
  fs.writeFileSync(tmp.file('empty_tokens.npy'), new Uint8Array(0));
  await refused(loadTokenData({ path: tmp.file('empty_tokens.npy') }, MODEL), 'Corrupt', tmp.file('empty_tokens.npy'), /token data is empty \(0 bytes\)/);
  // Arrays of no examples, though well formed, are refused too.
  fs.writeFileSync(tmp.file('none_images.npy'), npyBytes('|u1', [0, 2], new Uint8Array(0)));
  fs.writeFileSync(tmp.file('none_labels.npy'), npyBytes('|u1', [0], new Uint8Array(0)));
  await refused(loadDataset({ path: tmp.file('none_images.npy') }, 'test'), 'BadShape', tmp.file('none_images.npy'), /holds no images/);
});

test('a NaN or infinity in the images is refused naming the file and the example', async () => {
  const values = new Float32Array(10).fill(0.5);
  values[7] = NaN;
  fs.writeFileSync(tmp.file('nan_images.npy'), npyBytes('<f4', [5, 2], new Uint8Array(values.buffer)));
  fs.writeFileSync(tmp.file('nan_labels.npy'), npyBytes('|u1', [5], new Uint8Array(5)));
  await refused(loadDataset({ path: tmp.file('nan_images.npy') }, 'test'), 'NonFinite', tmp.file('nan_images.npy'), /image 3 holds NaN/);
  // Beyond the limit, a non-finite example is not read, so it does not count.
  assert.equal((await loadDataset({ path: tmp.file('nan_images.npy'), limit: 3 }, 'test')).n, 3);
  const st = tmp.file('inf.safetensors');
  const x = new Float32Array([1, 2, 3, -Infinity]);
  rawSafetensors(st, { x: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, y: { dtype: 'U8', shape: [2], data_offsets: [16, 18] } }, Buffer.concat([new Uint8Array(x.buffer), Buffer.alloc(2)]));
  await refused(loadDataset({ path: st }, 'test'), 'NonFinite', `${st}:x`, /image 1 holds -Infinity/);
});
