/**
 * Heatmap PNGs for the demo report, drawn with the SAME downsampling and colour maps as the
 * alignment panel: the pixel code lives in `shared/pixels/` (pure: no DOM, no Node), which the
 * webview and this module both import, so the report and the panel share one implementation.
 */
import { binary, colormap, type ColormapName } from '../../shared/pixels/colormap';
import { renderMatrix, renderPermutation, type BlockMode } from '../../shared/pixels/heatmap';
import { encodePng } from '../core/png';

export interface HeatmapImageOptions {
  /** Largest side of the image in cells (default 1024); bigger matrices are block-reduced. */
  readonly maxSide?: number;
  readonly mode?: BlockMode;
  readonly colormap?: ColormapName;
  /** Theme used for the diverging map's neutral centre (default light). */
  readonly dark?: boolean;
  /** Integer pixels per cell (default 1). */
  readonly scale?: number;
}

export interface HeatmapImage {
  readonly width: number;
  readonly height: number;
  readonly png: Buffer;
  /** Value range mapped to the colour map's ends. */
  readonly min: number;
  readonly max: number;
}

/** Repeats each pixel `scale`×`scale` times (nearest neighbour, like the panel's pixelated zoom). */
export function upscaleRgba(rgba: Uint8ClampedArray, side: number, scale: number): Uint8ClampedArray {
  if (scale <= 1) return rgba;
  const w = side * scale;
  const out = new Uint8ClampedArray(w * w * 4);
  for (let y = 0; y < w; y++) {
    const sy = Math.floor(y / scale) * side;
    for (let x = 0; x < w; x++) {
      const s = (sy + Math.floor(x / scale)) * 4;
      const d = (y * w + x) * 4;
      out[d] = rgba[s];
      out[d + 1] = rgba[s + 1];
      out[d + 2] = rgba[s + 2];
      out[d + 3] = rgba[s + 3];
    }
  }
  return out;
}

/** PNG of a row-major n×n similarity matrix (A's units as rows, B's as columns). */
export function similarityPng(matrix: Float32Array, n: number, options: HeatmapImageOptions = {}): HeatmapImage {
  const name = options.colormap ?? 'viridis';
  const r = renderMatrix(matrix, n, colormap(name, options.dark ?? false), {
    maxSide: options.maxSide,
    mode: options.mode,
    symmetric: name === 'diverging',
  });
  const scale = Math.max(1, Math.floor(options.scale ?? 1));
  const side = r.side * scale;
  return { width: side, height: side, png: encodePng(upscaleRgba(r.rgba, r.side, scale), side, side), min: r.min, max: r.max };
}

/** PNG of the permutation matrix P[i, perm[i]] = 1. */
export function permutationPng(perm: ArrayLike<number>, options: HeatmapImageOptions = {}): HeatmapImage {
  const dark = options.dark ?? false;
  const lut = dark ? binary([0x1e, 0x1e, 0x1e], [0x4f, 0xc1, 0xff]) : binary([0xff, 0xff, 0xff], [0x00, 0x5f, 0xb8]);
  const r = renderPermutation(perm, lut, options.maxSide);
  const scale = Math.max(1, Math.floor(options.scale ?? 1));
  const side = r.side * scale;
  return { width: side, height: side, png: encodePng(upscaleRgba(r.rgba, r.side, scale), side, side), min: 0, max: 1 };
}
