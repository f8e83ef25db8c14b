/**
 * Pure pixel math for heatmaps (no DOM): block downsampling of an n×n matrix to a display
 * resolution, value → RGBA through a colour LUT, and the permutation matrix image drawn straight
 * from the gather indices (never materialising n² cells). The webview puts the RGBA into a canvas
 * `ImageData`; `src/demo/heatmapImage.ts` encodes the same RGBA as PNG for the demo.
 */
import type { ColormapLut } from './colormap';

export type BlockMode = 'mean' | 'max';

/** Largest side drawn by default; bigger matrices are reduced by an integer block factor. */
export const MAX_CANVAS_SIDE = 1024;

export interface Downsampled {
  /** Side of the reduced matrix. */
  readonly side: number;
  /** Source cells per output cell along each axis. */
  readonly block: number;
  readonly values: Float32Array;
}

/** Integer block factor that brings `n` to at most `maxSide`. */
export function blockFactor(n: number, maxSide = MAX_CANVAS_SIDE): number {
  return Math.max(1, Math.ceil(n / Math.max(1, maxSide)));
}

/**
 * Reduces a row-major n×n matrix by `block`×`block` blocks (edge blocks may be partial) using
 * the mean or the max of each block. Non-finite cells are ignored; an all-non-finite block is NaN.
 * `abs`: of |matrix| (an orthogonal map's picture), read straight from the matrix (any numeric
 * array, float64 maps too) without a full-size copy.
 */
export function downsample(matrix: ArrayLike<number>, n: number, block: number, mode: BlockMode = 'mean', abs = false): Downsampled {
  if (matrix.length !== n * n) throw new RangeError(`heatmap: matrix has ${matrix.length} cells, expected ${n}×${n}`);
  if (block <= 1 && !abs && matrix instanceof Float32Array) return { side: n, block: 1, values: matrix };
  if (block <= 1) return { side: n, block: 1, values: Float32Array.from(matrix, (v) => (abs ? Math.abs(v) : v)) };
  const side = Math.ceil(n / block);
  const acc = new Float64Array(side * side).fill(mode === 'max' ? -Infinity : 0);
  const cnt = new Uint32Array(side * side);
  // Output column of each input column, computed once (the inner loop runs n² times).
  const colOut = new Int32Array(n);
  for (let j = 0; j < n; j++) colOut[j] = Math.floor(j / block);
  for (let i = 0; i < n; i++) {
    const rowOut = Math.floor(i / block) * side;
    const rowIn = i * n;
    for (let j = 0; j < n; j++) {
      const v = abs ? Math.abs(matrix[rowIn + j]) : matrix[rowIn + j];
      // Skips NaN and ±Infinity (v - v is NaN for both).
      if (v - v !== 0) continue;
      const o = rowOut + colOut[j];
      if (mode === 'max') {
        if (v > acc[o]) acc[o] = v;
      } else {
        acc[o] += v;
      }
      cnt[o]++;
    }
  }
  const values = new Float32Array(side * side);
  for (let o = 0; o < values.length; o++) {
    values[o] = cnt[o] === 0 ? NaN : mode === 'max' ? acc[o] : acc[o] / cnt[o];
  }
  return { side, block, values };
}

/** Finite minimum and maximum (0, 0 when there are none). */
export function finiteRange(values: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { min: 0, max: 0 };
  return { min, max };
}

/**
 * The 1st to 99.5th percentile of the finite values: a few extreme cells (large-norm units)
 * would otherwise stretch the colour scale and leave the matched diagonal faint.
 */
export function robustRange(values: ArrayLike<number>, lo = 0.01, hi = 0.995): { min: number; max: number } {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]);
  if (finite.length === 0) return { min: 0, max: 0 };
  const sorted = Float64Array.from(finite).sort();
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))];
  const r = { min: at(lo), max: at(hi) };
  return r.max > r.min ? r : finiteRange(values);
}

/** Range symmetric about 0 (for the diverging map): [-m, m] with m = max |v|. */
export function symmetricRange(values: ArrayLike<number>): { min: number; max: number } {
  const r = finiteRange(values);
  const m = Math.max(Math.abs(r.min), Math.abs(r.max)) || 1;
  return { min: -m, max: m };
}

/**
 * Maps values to RGBA through `lut` over [lo, hi] (clamped). NaN cells get `nanColor`.
 * Returns a buffer of `values.length × 4` bytes ready for `new ImageData(rgba, side, side)`.
 */
export function toRgba(
  values: ArrayLike<number>,
  lut: ColormapLut,
  lo: number,
  hi: number,
  nanColor: readonly [number, number, number] = [128, 128, 128],
  out: Uint8ClampedArray = new Uint8ClampedArray(values.length * 4),
): Uint8ClampedArray {
  const span = hi - lo;
  const scale = span > 0 ? 255 / span : 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const p = i * 4;
    if (v !== v) {
      out[p] = nanColor[0];
      out[p + 1] = nanColor[1];
      out[p + 2] = nanColor[2];
      out[p + 3] = 255;
      continue;
    }
    let k = span > 0 ? Math.round((v - lo) * scale) : 128;
    if (k < 0) k = 0;
    else if (k > 255) k = 255;
    const q = k * 4;
    out[p] = lut[q];
    out[p + 1] = lut[q + 1];
    out[p + 2] = lut[q + 2];
    out[p + 3] = 255;
  }
  return out;
}

/**
 * The permutation matrix P with P[i, perm[i]] = 1 reduced by `block`×`block` blocks (block max,
 * the same cells `downsample` uses): a cell is 1 when any (i, perm[i]) pair falls in it.
 * O(n + side²), never n².
 */
export function permutationCells(perm: ArrayLike<number>, block: number): Float32Array {
  const n = perm.length;
  const side = Math.max(1, Math.ceil(n / block));
  const cells = new Float32Array(side * side);
  for (let i = 0; i < n; i++) {
    cells[Math.floor(i / block) * side + Math.floor(perm[i] / block)] = 1;
  }
  return cells;
}

/** Number of positions i with perm[i] !== i. */
export function movedUnits(perm: ArrayLike<number>): number {
  let moved = 0;
  for (let i = 0; i < perm.length; i++) if (perm[i] !== i) moved++;
  return moved;
}

/** The inverse permutation (position of B unit j in the aligned order). */
export function invertPermutation(perm: ArrayLike<number>): Int32Array {
  const inv = new Int32Array(perm.length).fill(-1);
  for (let i = 0; i < perm.length; i++) inv[perm[i]] = i;
  return inv;
}

export interface RenderedHeatmap {
  readonly side: number;
  readonly block: number;
  readonly values: Float32Array;
  readonly rgba: Uint8ClampedArray;
  readonly min: number;
  readonly max: number;
}

/** Downsamples and colours a similarity matrix in one call (what the webview and the PNG writer both do). */
export function renderMatrix(
  matrix: Float32Array,
  n: number,
  lut: ColormapLut,
  options: { maxSide?: number; mode?: BlockMode; symmetric?: boolean; nanColor?: readonly [number, number, number]; fullRange?: boolean } = {},
): RenderedHeatmap {
  const d = downsample(matrix, n, blockFactor(n, options.maxSide), options.mode ?? 'mean');
  const range = options.symmetric ? symmetricRange(d.values) : options.fullRange ? finiteRange(d.values) : robustRange(d.values);
  const rgba = toRgba(d.values, lut, range.min, range.max, options.nanColor);
  return { side: d.side, block: d.block, values: d.values, rgba, min: range.min, max: range.max };
}

/** Colours the permutation matrix of `perm` at ≤ maxSide cells per side. */
export function renderPermutation(perm: ArrayLike<number>, lut: ColormapLut, maxSide = MAX_CANVAS_SIDE): RenderedHeatmap {
  const n = perm.length;
  const block = blockFactor(n, maxSide);
  const side = Math.max(1, Math.ceil(n / block));
  const values = permutationCells(perm, block);
  const rgba = toRgba(values, lut, 0, 1);
  return { side, block, values, rgba, min: 0, max: 1 };
}
