/**
 * One tensor of a diff, drawn: the histograms of A's and B's (or π(B)'s) values over one shared
 * range, and |A−B| reduced to at most `maxSide` × `maxSide` cells by block max (a single changed
 * weight stays visible). Rank ≥ 2 tensors are read as rows × (product of the other axes). Two
 * passes over chunks (range, then histograms and cells): memory is the cells plus one chunk of
 * each, except that a tensor moved by π is held whole in B's stored dtype, as in diff.ts.
 */
import type { Checkpoint } from '../checkpoint';
import { permuteBytes } from '../matching/permute';
import { bytesValueChunks, CHUNK_ELEMENTS, readableElementBytes, tensorValueChunks, type TensorValues } from '../safetensors/chunks';
import { addHistogram, histogramEdges } from '../scan/histogram';

export interface Histogram {
  /** bins + 1 edges; the last bin is closed on the right. */
  readonly edges: number[];
  readonly counts: number[];
}

export interface TensorPicture {
  readonly tensor: string;
  readonly shape: number[];
  readonly histogramA: Histogram;
  readonly histogramB: Histogram;
  /** |A−B| by block max: `rows` × `cols` cells (row-major), each covering `blockRows` × `blockCols` elements; null where no pair was finite. */
  readonly heatmap: { rows: number; cols: number; blockRows: number; blockCols: number; values: (number | null)[] };
}

export interface PictureOptions {
  /** π's permutation on each axis of B's tensor (null: unmoved); absent: B as it is. */
  readonly permutations?: readonly (Int32Array | null)[];
  readonly bins?: number;
  readonly maxSide?: number;
  /** Called before each chunk: throw to cancel. */
  readonly beforeChunk?: () => void;
  /** Elements read of both passes (`done` of `total`), after each chunk. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly chunkElements?: number;
}

export const PICTURE_BINS = 64;
export const PICTURE_MAX_SIDE = 256;

/** A's and B's chunks side by side (B permuted when π moves this tensor). */
async function* pairedChunks(a: Checkpoint, b: Checkpoint, name: string, opts: PictureOptions): AsyncGenerator<[TensorValues, TensorValues]> {
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  const perms = opts.permutations ?? [];
  let bIt: Iterator<TensorValues> | AsyncIterator<TensorValues>;
  if (perms.some((p) => p !== null)) {
    const tb = b.get(name)!;
    const permuted = permuteBytes(await b.readRaw(name), tb.shape, perms);
    if (permuted === null) throw new Error(`${b.path}: tensor \`${name}\` (${tb.dtype}) cannot be permuted`);
    bIt = bytesValueChunks(permuted, tb.dtype, readableElementBytes(b, name), chunk)[Symbol.iterator]();
  } else {
    bIt = tensorValueChunks(b, name, chunk)[Symbol.asyncIterator]();
  }
  for await (const x of tensorValueChunks(a, name, chunk)) {
    opts.beforeChunk?.();
    const y = await bIt.next();
    if (y.done) throw new Error(`${b.path}: tensor \`${name}\` ended before A's`);
    yield [x, y.value];
  }
}

/** Histograms and the |A−B| block-max heatmap of tensor `name`, present in both with the same shape. */
export async function tensorPicture(a: Checkpoint, b: Checkpoint, name: string, opts: PictureOptions = {}): Promise<TensorPicture> {
  const ta = a.get(name);
  const tb = b.get(name);
  if (!ta) throw new Error(`${a.path}: tensor \`${name}\` not found`);
  if (!tb) throw new Error(`${b.path}: tensor \`${name}\` not found`);
  if (ta.shape.length < 2) throw new Error(`${a.path}: tensor \`${name}\` has ${ta.shape.length} axis; a picture needs 2 or more`);
  if (ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i])) {
    throw new Error(`${b.path}: tensor \`${name}\` has shape [${tb.shape.join(', ')}], A's is [${ta.shape.join(', ')}]`);
  }
  if (ta.shape.some((d) => d === 0)) throw new Error(`${a.path}: tensor \`${name}\` has no values (shape [${ta.shape.join(', ')}])`);
  const bins = opts.bins ?? PICTURE_BINS;
  const maxSide = opts.maxSide ?? PICTURE_MAX_SIDE;
  const nRows = ta.shape[0];
  const nCols = ta.shape.slice(1).reduce((p, d) => p * d, 1);
  const blockRows = Math.max(1, Math.ceil(nRows / maxSide));
  const blockCols = Math.max(1, Math.ceil(nCols / maxSide));
  const rows = Math.ceil(nRows / blockRows);
  const cols = Math.ceil(nCols / blockCols);
  const total = 2 * nRows * nCols;
  let done = 0;
  const read = (n: number): void => {
    done = Math.min(total, done + n);
    opts.onProgress?.(done, total);
  };

  // Pass 1: one finite range for both, so the two histograms share their bins.
  let min = Infinity;
  let max = -Infinity;
  for await (const [x, y] of pairedChunks(a, b, name, opts)) {
    for (const s of [x, y]) {
      for (let i = 0; i < s.length; i++) {
        const v = s[i];
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    read(x.length);
  }
  // ±Infinity would make the range infinite: fall back to the finite values' range in that rare case.
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = Infinity;
    max = -Infinity;
    for await (const [x, y] of pairedChunks(a, b, name, opts)) {
      for (const s of [x, y]) for (let i = 0; i < s.length; i++) if (Number.isFinite(s[i])) (min = Math.min(min, s[i])), (max = Math.max(max, s[i]));
    }
  }
  // No finite value at all: empty histograms over [0, 1].
  const edges = Number.isFinite(min) && Number.isFinite(max) ? histogramEdges(min, max, bins) : histogramEdges(0, 1, bins);
  const lo = edges[0];
  const hi = edges[bins];

  // Pass 2: histograms and block max of |A−B|.
  const countsA = new Array<number>(bins).fill(0);
  const countsB = new Array<number>(bins).fill(0);
  const cells = new Float64Array(rows * cols).fill(-1);
  let at = 0;
  for await (const [x, y] of pairedChunks(a, b, name, opts)) {
    addHistogram(countsA, lo, hi, x);
    addHistogram(countsB, lo, hi, y);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      const k = at + i;
      const o = Math.floor(Math.floor(k / nCols) / blockRows) * cols + Math.floor((k % nCols) / blockCols);
      if (d > cells[o]) cells[o] = d; // NaN never wins
    }
    at += x.length;
    read(x.length);
  }
  return {
    tensor: name,
    shape: [...ta.shape],
    histogramA: { edges, counts: countsA },
    histogramB: { edges: [...edges], counts: countsB },
    heatmap: { rows, cols, blockRows, blockCols, values: Array.from(cells, (c) => (c < 0 ? null : c)) },
  };
}
