/**
 * `tensorStats` request: min, max, mean, std, NaN/Inf counts and a histogram of one tensor's
 * finite values, for the inspector. The raw bytes are decoded in chunks (two passes: moments,
 * then histogram over [min, max]), so no float32 copy of a large tensor is held; sums are float64.
 */
import { decodeToFloat32, openCheckpoint } from '../../core/safetensors';
import type { HandlerContext } from '../dispatch';
import { EngineError, throwIfCancelled } from '../errors';
import { base } from '../loadTensors';
import type { TensorStatsRequest, TensorStatsResult } from '../protocol';

/** Decoded elements per chunk: bounded memory and a cancellation check per chunk. */
const CHUNK_ELEMENTS = 1 << 20;

export interface Moments {
  count: number;
  nanCount: number;
  infCount: number;
  min: number;
  max: number;
  /** Shifted sums (x - shift), float64, to keep the variance accurate when |mean| >> std. */
  shift: number;
  sum: number;
  sumSq: number;
}

export function emptyMoments(): Moments {
  return { count: 0, nanCount: 0, infCount: 0, min: Infinity, max: -Infinity, shift: Number.NaN, sum: 0, sumSq: 0 };
}

export function addMoments(m: Moments, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (Number.isNaN(v)) {
      m.nanCount++;
      continue;
    }
    if (v === Infinity || v === -Infinity) {
      m.infCount++;
      continue;
    }
    if (Number.isNaN(m.shift)) m.shift = v;
    const d = v - m.shift;
    m.count++;
    m.sum += d;
    m.sumSq += d * d;
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
}

/** Histogram edges: `bins` equal bins over [min, max] (a constant tensor gets [v - 0.5, v + 0.5]). */
export function histogramEdges(min: number, max: number, bins: number): number[] {
  const lo = min === max ? min - 0.5 : min;
  const hi = min === max ? max + 0.5 : max;
  return Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
}

export function addHistogram(counts: number[], lo: number, hi: number, x: Float32Array): void {
  const bins = counts.length;
  const scale = bins / (hi - lo);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) continue;
    // The last bin is closed on the right, like numpy.histogram.
    let k = Math.floor((v - lo) * scale);
    if (k >= bins) k = bins - 1;
    if (k < 0) k = 0;
    counts[k]++;
  }
}

export async function tensorStatsHandler(req: TensorStatsRequest, ctx: HandlerContext): Promise<TensorStatsResult> {
  const ck = await openCheckpoint(req.path);
  try {
    const info = ck.get(req.tensor);
    if (!info) throw new EngineError('InvalidRequest', `${base(req.path)}: tensor \`${req.tensor}\` not found`, req.path);
    const raw = await ck.readRaw(req.tensor);
    const count = info.shape.reduce((p, d) => p * d, 1);
    const width = count === 0 ? 1 : raw.length / count;
    // Whole bytes per element decode chunk by chunk; sub-byte dtypes (if decodable at all) at once.
    const step = Number.isInteger(width) ? CHUNK_ELEMENTS * width : raw.length;
    const chunks = function* (): Generator<Uint8Array> {
      for (let at = 0; at < raw.length; at += step) yield raw.subarray(at, Math.min(raw.length, at + step));
    };
    const m = emptyMoments();
    let done = 0;
    for (const c of chunks()) {
      throwIfCancelled(ctx.signal, 'tensor statistics');
      addMoments(m, decodeToFloat32(info.dtype, c, req.path, req.tensor));
      done += c.length;
      ctx.onProgress({ stage: 'statistics', fraction: (0.5 * done) / Math.max(1, raw.length) });
      await new Promise<void>((r) => setImmediate(r));
    }
    const mean = m.count ? m.shift + m.sum / m.count : Number.NaN;
    const variance = m.count ? Math.max(0, m.sumSq / m.count - (m.sum / m.count) ** 2) : Number.NaN;
    let edges: number[] = [];
    let counts: number[] = [];
    if (m.count > 0) {
      edges = histogramEdges(m.min, m.max, req.bins);
      counts = new Array<number>(req.bins).fill(0);
      done = 0;
      for (const c of chunks()) {
        throwIfCancelled(ctx.signal, 'tensor statistics');
        addHistogram(counts, edges[0], edges[req.bins], decodeToFloat32(info.dtype, c, req.path, req.tensor));
        done += c.length;
        ctx.onProgress({ stage: 'histogram', fraction: 0.5 + (0.5 * done) / Math.max(1, raw.length) });
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    return {
      tensor: req.tensor,
      count,
      min: m.count ? m.min : Number.NaN,
      max: m.count ? m.max : Number.NaN,
      mean,
      std: Math.sqrt(variance),
      nanCount: m.nanCount,
      infCount: m.infCount,
      histogram: { edges, counts },
    };
  } finally {
    await ck.close();
  }
}
