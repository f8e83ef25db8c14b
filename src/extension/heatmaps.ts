/**
 * Turns the engine's per-group similarity matrices into what the alignment panel draws: matrices
 * larger than 1024 per side are block-averaged down before posting (a 4096² float matrix is 64 MB;
 * a canvas cannot show more than its pixel width anyway). Per-block permutations (heads' inner
 * dims) arrive as their diagonal blocks only and pass through.
 */
import type { AlignResult } from '../engine/protocol';
import type { HeatmapData } from '../../webview/protocol';
import { blockFactor, downsample } from '../../shared/pixels/heatmap';

export const MAX_HEATMAP_SIDE = 1024;

/** Block-averages a row-major n×n matrix to at most `max` per side (shared/pixels/heatmap.ts's `downsample`). */
export function downsampleSquare(data: Float32Array, n: number, max: number): { data: Float32Array; size: number } {
  const reduced = downsample(data, n, blockFactor(n, max), 'mean');
  return { data: reduced.values, size: reduced.side };
}

export function heatmapsOf(result: AlignResult, max = MAX_HEATMAP_SIDE): HeatmapData[] {
  return (result.matrices ?? []).map((m) => {
    // Diagonal blocks (head_dim² per head) are small and sent as they are.
    if (m.blocks !== undefined) return { name: m.name, size: m.size, blocks: m.blocks, perm: result.perms[m.name] ?? [], before: m.before, after: m.after };
    const before = downsampleSquare(m.before, m.size, max);
    const after = downsampleSquare(m.after, m.size, max);
    return {
      name: m.name,
      size: before.size,
      originalSize: m.size,
      perm: result.perms[m.name] ?? [],
      before: before.data,
      after: after.data,
    };
  });
}
