/**
 * A worker's cache for barrier-curve chunks: the data set uploaded as batches and each
 * checkpoint's first-Linear-layer outputs on it. A barrier plan sends one worker several
 * `evaluatePath` chunks (naive and aligned path, a few lambdas each); without the cache each
 * chunk re-reads the data and recomputes x W^T + b for A and B (about 16 GFLOP on 10k MNIST
 * images for a 784-512 first layer), which cost more than the chunk's own lambdas.
 *
 * Entries are keyed by the files' path, size, mtime and inode (a rewritten file misses) and the
 * data options; in-use entries are never freed; everything is released after a short idle time
 * so a long-lived worker does not keep a data set on its heap.
 */
import { statSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset, type DataLimits, type Dataset } from '../../core/data';
import type { DataOptions } from '../protocol';
import { linearOutputs, toBatches, type Batches } from './evaluate';

/** How long an unused cache keeps its tensors (a barrier's chunks follow each other within this). */
export const CACHE_IDLE_MS = 20_000;
/** First-layer outputs kept per data set: A, B and pi(B) of one pair, plus a spare. */
const MAX_FIRST_LAYER_ENTRIES = 4;

interface Entry<T> {
  readonly value: T;
  users: number;
  stale: boolean;
  release(): void;
}

export interface Lease<T> {
  readonly value: T;
  /** Ends this use; a stale entry is freed once its last user is done. */
  done(): void;
}

function statKey(file: string): string {
  const s = statSync(file);
  const own = `${path.resolve(file)}:${s.size}:${s.mtimeMs}:${s.ino}`;
  if (!s.isDirectory()) return own;
  // A folder of IDX files: the files' own stats (rewriting one does not change the folder's mtime).
  const files = readdirSync(file).sort().map((f) => {
    const fs = statSync(path.join(file, f));
    return `${f}:${fs.size}:${fs.mtimeMs}:${fs.ino}`;
  });
  return `${own}[${files.join(',')}]`;
}

/** A short fingerprint of a permutation (FNV-1a over its entries) plus its length. */
function permKey(p: Int32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) {
    h ^= p[i];
    h = Math.imul(h, 0x01000193);
  }
  return `${p.length}:${(h >>> 0).toString(16)}`;
}

/** Identity of a checkpoint file's current contents (cheap: one stat). */
export function fileKey(file: string): string {
  return statKey(file);
}

export interface CachedData {
  readonly key: string;
  readonly dataset: Dataset;
  readonly batches: Batches;
  readonly batchSize: number;
}

class PathCache {
  private dataEntry?: Entry<CachedData>;
  private first = new Map<string, Entry<tf.Tensor2D[]>>();
  private timer?: NodeJS.Timeout;

  /**
   * The data set as batches, loaded once while the options and files are unchanged. The batch
   * size is planned from the loaded data set (`planBatch`, the memory plan); a cached data set
   * with another batch size is re-batched (its first-layer outputs go with the old batches).
   */
  async data(opts: DataOptions, which: 'train' | 'test', limits: DataLimits, planBatch: number | ((dataset: Dataset) => number)): Promise<Lease<CachedData>> {
    const plan = (d: Dataset): number => (typeof planBatch === 'number' ? planBatch : planBatch(d));
    let stat: string;
    try {
      stat = statKey(opts.path);
    } catch {
      // Missing or unreadable: the loader raises the typed error naming the path.
      const dataset = await loadDataset(opts, which, limits);
      const batchSize = plan(dataset);
      const batches = toBatches(dataset, batchSize);
      return this.lease(entry({ key: '', dataset, batches, batchSize }, () => batches.dispose()), true);
    }
    const dataKey = JSON.stringify([stat, which, opts.limit ?? null, opts.mean ?? null, opts.std ?? null]);
    const cached = this.dataEntry?.value;
    const dataset = cached && cached.key.startsWith(`${dataKey}|`) ? cached.dataset : await loadDataset(opts, which, limits);
    const batchSize = plan(dataset);
    const key = `${dataKey}|${batchSize}`;
    // Another request may have filled it while this one read the files.
    if (!this.dataEntry || this.dataEntry.value.key !== key) {
      this.evictData();
      const batches = toBatches(dataset, batchSize);
      this.dataEntry = entry({ key, dataset, batches, batchSize }, () => batches.dispose());
    }
    return this.lease(this.dataEntry);
  }

  /**
   * x W^T + b of a checkpoint's Linear layer for every batch of `data`, computed once per
   * (data, file, layer). `weight`/`bias` must be that file's tensors (unpermuted).
   */
  async firstLayer(data: CachedData, file: string, layer: string, weight: DenseTensor, bias: DenseTensor | undefined, signal?: AbortSignal): Promise<Lease<tf.Tensor2D[]>> {
    return this.firstEntry(`${data.key}|${fileKey(file)}|${layer}`, () => linearOutputs(data.batches, weight, bias, signal));
  }

  /**
   * The same outputs with their columns gathered by `perm` (pi(B)'s first layer when the
   * permutation only reorders its output units), computed once per (data, file, layer, perm).
   */
  async gatheredFirstLayer(data: CachedData, file: string, layer: string, weight: DenseTensor, bias: DenseTensor | undefined, perm: Int32Array, signal?: AbortSignal): Promise<Lease<tf.Tensor2D[]>> {
    return this.firstEntry(`${data.key}|${fileKey(file)}|${layer}|perm:${permKey(perm)}`, async () => {
      const plain = await this.firstLayer(data, file, layer, weight, bias, signal);
      const out: tf.Tensor2D[] = [];
      try {
        // A plain copy loop: tf.gather along axis 1 is ~20x slower on wasm, and this is exact either way.
        for (const t of plain.value) {
          const [rows, cols] = t.shape;
          const src = await t.data<'float32'>();
          const dst = new Float32Array(src.length);
          for (let r = 0; r < rows; r++) {
            const o = r * cols;
            for (let i = 0; i < cols; i++) dst[o + i] = src[o + perm[i]];
          }
          out.push(tf.tensor2d(dst, [rows, cols]));
        }
        return out;
      } catch (e) {
        for (const t of out) t.dispose();
        throw e;
      } finally {
        plain.done();
      }
    });
  }

  private async firstEntry(key: string, compute: () => Promise<tf.Tensor2D[]>): Promise<Lease<tf.Tensor2D[]>> {
    let e = this.first.get(key);
    if (!e) {
      const outs = await compute();
      e = this.first.get(key);
      if (e) for (const t of outs) t.dispose();
      else {
        e = entry(outs, () => outs.forEach((t) => t.dispose()));
        this.first.set(key, e);
        while (this.first.size > MAX_FIRST_LAYER_ENTRIES) {
          const oldest = this.first.keys().next().value as string;
          this.retire(this.first.get(oldest)!);
          this.first.delete(oldest);
        }
      }
    } else {
      // Most recently used last, so eviction drops the oldest.
      this.first.delete(key);
      this.first.set(key, e);
    }
    return this.lease(e);
  }

  /** Frees everything not in use now (the rest when its last user is done). */
  clear(): void {
    this.evictData();
    this.evictFirst();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private evictData(): void {
    // First-layer outputs belong to a data set: they go with it.
    this.evictFirst();
    if (this.dataEntry) this.retire(this.dataEntry);
    this.dataEntry = undefined;
  }

  private evictFirst(): void {
    for (const e of this.first.values()) this.retire(e);
    this.first.clear();
  }

  private retire<T>(e: Entry<T>): void {
    e.stale = true;
    if (e.users === 0) e.release();
  }

  private lease<T>(e: Entry<T>, uncached = false): Lease<T> {
    if (uncached) e.stale = true;
    e.users++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let ended = false;
    return {
      value: e.value,
      done: () => {
        if (ended) return;
        ended = true;
        e.users--;
        if (e.stale && e.users === 0) e.release();
        this.armIdleTimer();
      },
    };
  }

  private armIdleTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.clear(), CACHE_IDLE_MS);
    this.timer.unref();
  }
}

function entry<T>(value: T, free: () => void): Entry<T> {
  let freed = false;
  return {
    value,
    users: 0,
    stale: false,
    release: () => {
      if (!freed) free();
      freed = true;
    },
  };
}

/** The cache of this thread (one per worker; the unit tests share the main thread's). */
export const pathCache = new PathCache();
