/**
 * Out-of-core weight matching (issue 24): when a pair as stored does not fit the memory budget,
 * A's and B's tensors are read from their shards each time a product needs them (synchronous
 * positioned reads of the stored bytes, `Checkpoint.readRawSync`; the OS page cache keeps what it
 * can), instead of being held. A reader keeps the tensors it read last up to `keepBytes` (at least
 * the newest one), so that a product's consecutive uses of one tensor (B's operand before and
 * after a low-rank update) read it once; what it holds is counted here, for the plan and tests.
 */
import type { Checkpoint } from '../core/checkpoint';
import { decodeToFloat32, halfBits } from '../core/safetensors';
import { exponentMask, isHalfDtype, streamedDense, streamedHalf, type HeldTensor, type HeldTensorMap } from '../core/heldTensor';
import { base, countNonFinite, isFloatDtype, nonFinite, type LoadOptions } from './loadTensors';
import { EngineError } from './errors';

/** What one model's reader did: reads, bytes read, and the most it held at once. */
export interface StreamStats {
  reads: number;
  bytesRead: number;
  /** Seconds spent in the reads themselves (from the page cache or the disk). */
  readSeconds: number;
  /** Bytes of tensor values the reader holds now, and at most so far. */
  heldBytes: number;
  peakHeldBytes: number;
  /** The bound the reader keeps to (the largest tensor when that is more). */
  readonly keepBytes: number;
}

export interface StreamedModel {
  readonly tensors: HeldTensorMap;
  readonly stats: StreamStats;
}

const STATS = new WeakMap<HeldTensorMap, StreamStats>();

/** A streamed map's reader figures; undefined for tensors held in memory. */
export function streamStats(m: HeldTensorMap): StreamStats | undefined {
  return STATS.get(m);
}

/** Whether the checkpoint can be read on demand (safetensors files and their shards). */
export function canStream(ck: Checkpoint): boolean {
  return ck.readRawSync !== undefined;
}

/** Bytes a stream of `names` holds at most: the largest tensor as stored (16-bit) or as float32. */
export function streamKeepBytes(ck: Checkpoint, names: readonly string[]): number {
  let largest = 0;
  for (const name of names) {
    const info = ck.get(name);
    if (info) largest = Math.max(largest, (isHalfDtype(info.dtype) ? 2 : 4) * info.shape.reduce((p, s) => p * s, 1));
  }
  return largest;
}

/**
 * The named tensors of `ck` as a map whose values are read from the file at each use (16-bit
 * floats as stored, the rest as float32, NaN/Inf refused or zeroed as `readHeld` does at load).
 */
export function streamTensors(ck: Checkpoint, names: readonly string[], opts: LoadOptions, keepBytes = streamKeepBytes(ck, names)): StreamedModel {
  const readRawSync = ck.readRawSync?.bind(ck);
  if (!readRawSync) throw new EngineError('InvalidRequest', `${base(ck.path)}: only safetensors checkpoints can be read on demand (out of core)`, ck.path);
  const stats: StreamStats = { reads: 0, bytesRead: 0, readSeconds: 0, heldBytes: 0, peakHeldBytes: 0, keepBytes };
  // Most recently used last: Map keeps insertion order.
  const kept = new Map<string, { values: Uint16Array | Float32Array; bytes: number }>();
  const keep = (name: string, values: Uint16Array | Float32Array): void => {
    kept.set(name, { values, bytes: values.byteLength });
    stats.heldBytes += values.byteLength;
    for (const [old, entry] of kept) {
      if (stats.heldBytes <= keepBytes || old === name) break;
      kept.delete(old);
      stats.heldBytes -= entry.bytes;
    }
    stats.peakHeldBytes = Math.max(stats.peakHeldBytes, stats.heldBytes);
  };
  const recall = (name: string): Uint16Array | Float32Array | undefined => {
    const entry = kept.get(name);
    if (!entry) return undefined;
    kept.delete(name);
    kept.set(name, entry);
    return entry.values;
  };
  const readBytes = (name: string): Uint8Array => {
    const started = performance.now();
    const raw = readRawSync(name);
    stats.readSeconds += (performance.now() - started) / 1000;
    stats.reads++;
    stats.bytesRead += raw.byteLength;
    return raw;
  };
  const out = new Map<string, HeldTensor>();
  for (const name of names) {
    const info = ck.get(name);
    if (!info) throw new EngineError('InvalidRequest', `${base(ck.path)}: tensor \`${name}\` not found`, ck.path);
    const dtype = info.dtype;
    if (isHalfDtype(dtype)) {
      const mask = exponentMask(dtype);
      out.set(name, streamedHalf(info.shape, dtype, () => {
        const known = recall(name);
        if (known) return known as Uint16Array;
        const bits = halfBits(readBytes(name), ck.path, name);
        let bad = 0;
        for (let i = 0; i < bits.length; i++) if ((bits[i] & mask) === mask) bad++;
        if (nonFinite(ck, name, bad, opts)) for (let i = 0; i < bits.length; i++) if ((bits[i] & mask) === mask) bits[i] = 0;
        keep(name, bits);
        return bits;
      }));
    } else {
      out.set(name, streamedDense(info.shape, () => {
        const known = recall(name);
        if (known) return known as Float32Array;
        let data = decodeToFloat32(dtype, readBytes(name), ck.path, name);
        if (isFloatDtype(dtype) && nonFinite(ck, name, countNonFinite(data), opts)) data = data.map((v) => (Number.isFinite(v) ? v : 0));
        keep(name, data);
        return data;
      }));
    }
  }
  STATS.set(out, stats);
  return { tensors: out, stats };
}
