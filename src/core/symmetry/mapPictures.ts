/**
 * Pictures of an orthogonal alignment's maps for the alignment panel: |R| of each map (residual
 * stream, per-head query/key and value/output), reduced by block max so a message stays bounded
 * whatever the model: each map at most MAP_PICTURE_MAX_SIDE cells per side, all maps of one
 * alignment together at most MAP_PICTURES_MAX_CELLS cells (Float32: 8 MB). The residual stream
 * gets its full side cap; the per-head maps share the rest equally.
 *
 * Block max rather than block mean: a permutation's 1s stay 1 in whichever cell holds them (a
 * mean would dim them by the block's area), so "one bright cell per row" still reads as a
 * permutation after the reduction.
 */
import { blockFactor, downsample } from '../../../shared/pixels/heatmap';

export const MAP_PICTURE_MAX_SIDE = 256;
/** 2²¹ cells: GPT-2 small's 288 head maps at their full 64 × 64 and its residual stream at 256 × 256 fit. */
export const MAP_PICTURES_MAX_CELLS = 2 ** 21;

/** |R| reduced: `side` × `side` cells (row-major), each the largest |R_ij| of a `block` × `block` block (edge blocks partial). */
export interface MapPicture {
  readonly side: number;
  readonly block: number;
  readonly values: Float32Array;
}

/** One row-major n × n map's picture, at most `maxSide` cells per side. */
export function mapPicture(r: ArrayLike<number>, n: number, maxSide = MAP_PICTURE_MAX_SIDE): MapPicture {
  const d = downsample(r, n, blockFactor(n, maxSide), 'max', true);
  return { side: d.side, block: d.block, values: d.values };
}

/** The maps of an orthogonal alignment, or something per map: the residual stream, then [layer][key/value head]. */
export interface OrthogonalMaps<T> {
  readonly residual: T;
  readonly qk: readonly (readonly T[])[];
  readonly vo: readonly (readonly T[])[];
}

/**
 * Each map's summary with its picture (`maps`: the fitted matrices, row-major, side = the
 * summary's `size`). The residual stream at most MAP_PICTURE_MAX_SIDE per side; the head maps
 * at the largest side whose total fits what is left of `budget`.
 */
export function withPictures<S extends { readonly size: number }>(
  summaries: OrthogonalMaps<S>,
  maps: OrthogonalMaps<ArrayLike<number>>,
  budget = MAP_PICTURES_MAX_CELLS,
): { residual: S & { picture: MapPicture }; qk: (S & { picture: MapPicture })[][]; vo: (S & { picture: MapPicture })[][] } {
  const residual = mapPicture(maps.residual, summaries.residual.size, Math.min(MAP_PICTURE_MAX_SIDE, Math.floor(Math.sqrt(budget))));
  const count = [...summaries.qk, ...summaries.vo].reduce((n, row) => n + row.length, 0);
  const rest = Math.max(0, budget - residual.side ** 2);
  const headSide = Math.max(1, Math.min(MAP_PICTURE_MAX_SIDE, Math.floor(Math.sqrt(rest / Math.max(1, count)))));
  const heads = (s: readonly (readonly S[])[], m: readonly (readonly ArrayLike<number>[])[]) =>
    s.map((row, l) => row.map((x, h) => ({ ...x, picture: mapPicture(m[l][h], x.size, headSide) })));
  return { residual: { ...summaries.residual, picture: residual }, qk: heads(summaries.qk, maps.qk), vo: heads(summaries.vo, maps.vo) };
}
