/**
 * `rebasin scan`: every tensor's min, max, mean, std and NaN / Inf / zero counts, read in chunks
 * (safetensors/chunks.ts) with float64 sums, and flags for tensors that look broken. The rule
 * (docs/cli.md, "scan FILE"):
 * - `nan` / `inf`: at least one NaN / ±Inf value;
 * - `all-zero`: every value is 0 (and there is at least one);
 * - `constant`: two or more values, all finite and equal, not zero;
 * - `extreme`: max |x| over the finite values > EXTREME_ABS, or std > EXTREME_STD_RATIO × the
 *   median std of the file's tensors with two or more finite values and std > 0.
 */
import type { Checkpoint } from '../checkpoint';
import type { ScanFlag } from '../../../shared/schema/scanFlags';
import { CHUNK_ELEMENTS, isNumericDtype, tensorValueChunks } from '../safetensors/chunks';
import { addMoments, emptyMoments, meanAndStd } from './moments';

export const EXTREME_ABS = 1e4;
export const EXTREME_STD_RATIO = 100;

export type { ScanFlag };

export interface TensorScan {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  /** Elements in the tensor. */
  readonly count: number;
  /** Over the finite values; NaN (null in JSON) when there are none. */
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  readonly nanCount: number;
  readonly infCount: number;
  readonly zeroCount: number;
  readonly flags: ScanFlag[];
}

export interface DtypeTotal {
  readonly dtype: string;
  readonly tensors: number;
  readonly params: number;
  readonly bytes: number;
}

export interface CheckpointScan {
  readonly tensors: TensorScan[];
  readonly dtypes: DtypeTotal[];
  /** The median std the `extreme` rule compares with (NaN when no tensor has a std > 0). */
  readonly medianStd: number;
  /** Tensors with at least one flag. */
  readonly flagged: number;
  /** Tensors whose values cannot be read as numbers (F4, F6, C64). */
  readonly skipped: { name: string; reason: string }[];
}

export interface ScanOptions {
  /** Called before each chunk: throw to cancel. */
  readonly beforeChunk?: () => void;
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
  readonly chunkElements?: number;
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((p, q) => p - q);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function flagsOf(t: Omit<TensorScan, 'flags'>, finite: number, medianStd: number): ScanFlag[] {
  const flags: ScanFlag[] = [];
  if (t.nanCount > 0) flags.push('nan');
  if (t.infCount > 0) flags.push('inf');
  if (t.count > 0 && t.zeroCount === t.count) flags.push('all-zero');
  else if (finite === t.count && finite >= 2 && t.min === t.max) flags.push('constant');
  if (finite > 0 && (Math.max(Math.abs(t.min), Math.abs(t.max)) > EXTREME_ABS || (medianStd > 0 && t.std > EXTREME_STD_RATIO * medianStd))) flags.push('extreme');
  return flags;
}

/** Scans every tensor of `ck` in its order. */
export async function scanCheckpoint(ck: Checkpoint, opts: ScanOptions = {}): Promise<CheckpointScan> {
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  const readable = ck.tensors.filter((t) => isNumericDtype(t.dtype));
  const skipped = ck.tensors.filter((t) => !isNumericDtype(t.dtype)).map((t) => ({ name: t.name, reason: `dtype ${t.dtype} cannot be read as numbers` }));
  const total = readable.reduce((s, t) => s + t.byteLength, 0);
  let done = 0;
  const scanned: { t: Omit<TensorScan, 'flags'>; finite: number }[] = [];
  for (const info of readable) {
    const count = info.shape.reduce((p, d) => p * d, 1);
    const width = count === 0 ? 0 : info.byteLength / count;
    const m = emptyMoments();
    for await (const x of tensorValueChunks(ck, info.name, chunk)) {
      opts.beforeChunk?.();
      addMoments(m, x);
      done += x.length * width;
      opts.onProgress?.(done, total, info.name);
    }
    const { mean, std } = meanAndStd(m);
    scanned.push({
      t: {
        name: info.name, dtype: info.dtype, shape: [...info.shape], count,
        min: m.count ? m.min : Number.NaN, max: m.count ? m.max : Number.NaN, mean, std,
        nanCount: m.nanCount, infCount: m.infCount, zeroCount: m.zeroCount,
      },
      finite: m.count,
    });
  }
  const medianStd = median(scanned.filter((s) => s.finite >= 2 && s.t.std > 0).map((s) => s.t.std));
  const tensors = scanned.map(({ t, finite }) => ({ ...t, flags: flagsOf(t, finite, medianStd) }));
  const dtypes = new Map<string, { tensors: number; params: number; bytes: number }>();
  for (const t of ck.tensors) {
    const d = dtypes.get(t.dtype) ?? { tensors: 0, params: 0, bytes: 0 };
    d.tensors++;
    d.params += t.shape.reduce((p, x) => p * x, 1);
    d.bytes += t.byteLength;
    dtypes.set(t.dtype, d);
  }
  return {
    tensors,
    dtypes: [...dtypes].map(([dtype, d]) => ({ dtype, ...d })),
    medianStd,
    flagged: tensors.filter((t) => t.flags.length > 0).length,
    skipped,
  };
}
