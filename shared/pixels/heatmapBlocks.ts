/**
 * Reading a heatmap of a per-block permutation (attention heads' inner dims) whichever way it
 * was sent: as its diagonal blocks only (`blocks`, see heatmapDataSchema) or, in runs recorded
 * before that, as the whole n × n matrix (zero outside the diagonal blocks).
 */

/** The fields of a heatmap these helpers read (webview/protocol.ts `HeatmapData`, the engine's `GroupMatrices`). */
export interface BlockHeatmap {
  readonly size: number;
  readonly originalSize?: number;
  readonly blocks?: number;
  readonly before: Float32Array;
  readonly after: Float32Array;
}

/**
 * Block g's m × m similarity (row-major), or undefined when the sender kept none per block (a
 * whole matrix block-averaged below its true size).
 */
export function diagonalBlock(h: BlockHeatmap, which: 'before' | 'after', g: number, m: number): Float32Array | undefined {
  const values = h[which];
  if (h.blocks !== undefined) return values.slice(g * m * m, (g + 1) * m * m);
  const n = h.originalSize ?? h.size;
  if (h.size !== n) return undefined;
  const out = new Float32Array(m * m);
  for (let i = 0; i < m; i++) out.set(values.subarray((g * m + i) * n + g * m, (g * m + i) * n + g * m + m), i * m);
  return out;
}

/** Whether `diagonalBlock` has values for this heatmap. */
export function hasBlockSimilarities(h: BlockHeatmap): boolean {
  return h.blocks !== undefined || h.size === (h.originalSize ?? h.size);
}

/**
 * The whole n × n matrices of a heatmap sent as diagonal blocks (zero between blocks), for the
 * generic heatmap view and its exports; a whole-matrix heatmap is returned as it is. Only for
 * groups small enough to draw whole (the outer view of query heads in a KV group, a group tab).
 */
export function expandBlocks<T extends BlockHeatmap>(h: T): T {
  const blocks = h.blocks;
  if (blocks === undefined) return h;
  const n = h.size;
  const m = n / blocks;
  const expand = (values: Float32Array): Float32Array => {
    const out = new Float32Array(n * n);
    for (let g = 0; g < blocks; g++) {
      for (let i = 0; i < m; i++) out.set(values.subarray((g * m + i) * m, (g * m + i + 1) * m), (g * m + i) * n + g * m);
    }
    return out;
  };
  const { blocks: _omit, ...rest } = h;
  return { ...rest, before: expand(h.before), after: expand(h.after) } as T;
}
