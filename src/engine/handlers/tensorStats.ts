/**
 * `tensorStats` request: min, max, mean, std, NaN/Inf counts and a histogram of one tensor's
 * finite values, for the inspector. The tensor is read in chunks of at most 64 MiB with
 * positioned reads into one reused buffer and decoded chunk by chunk (two passes: moments, then
 * the histogram over [min, max]), so memory stays flat whatever the tensor's size; sums are
 * float64. Each chunk checks for cancellation and reports how much has been read.
 */
import { open } from 'node:fs/promises';
import { decodeToFloat32, openCheckpoint, openSafetensors } from '../../core/safetensors';
import { readFully } from '../../core/safetensors/file-io';
import { detectFileFormat } from '../../core/formats';
import type { TensorInfo } from '../../core/checkpoint';
import { addHistogram, histogramEdges } from '../../core/scan/histogram';
import { addMoments, emptyMoments, meanAndStd } from '../../core/scan/moments';
import { formatBytes } from '../../../shared/bytes';
import type { HandlerContext } from '../handlerContext';
import { EngineError, throwIfCancelled } from '../errors';
import { base } from '../loadTensors';
import type { TensorStatsRequest, TensorStatsResult } from '../protocol';

/** Largest read: bounds the buffer (and a cancellation check per chunk). */
export const STATS_CHUNK_BYTES = 64 * 1024 * 1024;
/** Elements decoded at once: bounds the float32 copy of dtypes other than F32 (16 MiB). */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

/** A tensor's bytes, read in chunks: positioned reads from a safetensors file, or a PyTorch / Flax tensor read once. */
interface TensorBytes {
  readonly byteLength: number;
  readonly dtype: string;
  readonly count: number;
  read(target: Uint8Array, at: number): Promise<void>;
  close(): Promise<void>;
}

/** Where a tensor's bytes are: its file (the shard, for sharded checkpoints) and absolute offset. */
async function locate(req: TensorStatsRequest): Promise<TensorBytes> {
  const ck = await openCheckpoint(req.path);
  let info: TensorInfo | undefined;
  let whole: Uint8Array | undefined;
  try {
    info = ck.get(req.tensor);
    // PyTorch and Flax tensors may be strided views or compressed members: read through the checkpoint, once.
    if (info && (await detectFileFormat(info.file)) !== 'safetensors') whole = await ck.readRaw(req.tensor);
  } finally {
    await ck.close();
  }
  if (!info) throw new EngineError('InvalidRequest', `${base(req.path)}: tensor \`${req.tensor}\` not found`, req.path);
  const shape = { byteLength: info.byteLength, dtype: info.dtype, count: info.shape.reduce((p, d) => p * d, 1) };
  if (whole) {
    const bytes = whole;
    return { ...shape, read: async (target, at) => target.set(bytes.subarray(at, at + target.length)), close: async () => undefined };
  }
  // The file holding the bytes (the shard of a sharded checkpoint): its header says where its data section starts.
  const holder = await openSafetensors(info.file);
  let start: number;
  try {
    start = holder.dataStart + info.dataOffsets[0];
  } finally {
    await holder.close();
  }
  const file = info.file;
  const handle = await open(file, 'r').catch((cause: unknown) => {
    throw new EngineError('InvalidRequest', `${base(file)}: cannot open for reading (${cause instanceof Error ? cause.message : String(cause)})`, file);
  });
  return { ...shape, read: (target, at) => readFully(handle, target, start + at, file), close: () => handle.close() };
}

/** `chunkBytes` is for tests (many chunks from a small tensor); the engine uses the default. */
export async function tensorStatsHandler(req: TensorStatsRequest, ctx: HandlerContext, chunkBytes = STATS_CHUNK_BYTES): Promise<TensorStatsResult> {
  const where = await locate(req);
  const { count, byteLength, dtype } = where;
  const width = count === 0 ? 1 : byteLength / count;
  if (!Number.isInteger(width) && byteLength > chunkBytes) {
    await where.close();
    throw new EngineError('Unsupported', `${base(req.path)}: statistics of \`${req.tensor}\` (${dtype}, ${formatBytes(byteLength)}) are not supported`, req.path);
  }
  // Whole elements per chunk; a sub-byte dtype (if decodable at all) is small enough to read at once.
  const step = Number.isInteger(width) ? Math.max(width, Math.floor(Math.min(chunkBytes, CHUNK_ELEMENTS * width) / width) * width) : byteLength;
  const buffer = new Uint8Array(Math.min(step, Math.max(1, byteLength)));
  const total = formatBytes(byteLength);
  /** Reads the tensor chunk by chunk, handing each decoded chunk to `use`. */
  const pass = async (use: (x: Float32Array) => void, words: string, passStart: number): Promise<void> => {
    for (let at = 0; at < byteLength; at += step) {
      throwIfCancelled(ctx.signal, 'tensor statistics');
      const chunk = buffer.subarray(0, Math.min(step, byteLength - at));
      await where.read(chunk, at);
      use(decodeToFloat32(dtype, chunk, req.path, req.tensor));
      const done = Math.min(byteLength, at + step);
      ctx.onProgress({
        stage: 'statistics',
        fraction: passStart + (0.5 * done) / Math.max(1, byteLength),
        message: `${words}: ${formatBytes(done)} of ${total} read`,
      });
    }
  };
  try {
    const m = emptyMoments();
    await pass((x) => addMoments(m, x), 'Statistics (pass 1 of 2)', 0);
    const { mean, std } = meanAndStd(m);
    let edges: number[] = [];
    let counts: number[] = [];
    if (m.count > 0) {
      edges = histogramEdges(m.min, m.max, req.bins);
      const c = new Array<number>(req.bins).fill(0);
      await pass((x) => addHistogram(c, edges[0], edges[req.bins], x), 'Histogram (pass 2 of 2)', 0.5);
      counts = c;
    }
    return {
      tensor: req.tensor,
      count,
      min: m.count ? m.min : Number.NaN,
      max: m.count ? m.max : Number.NaN,
      mean,
      std,
      nanCount: m.nanCount,
      infCount: m.infCount,
      histogram: { edges, counts },
    };
  } finally {
    await where.close();
  }
}
