/**
 * A pool of compute workers for independent work (the λ points of a barrier curve, several
 * checkpoints). tfjs's wasm backend is single-threaded in Node, so N workers with a backend each
 * give about N× throughput on N cores (notes/COMPUTE.md). Workers start on first use; a worker
 * that dies is replaced by a fresh one on the next request sent to its slot.
 */
import * as os from 'node:os';
import { formatBytes } from '../../shared/bytes';
import { EngineError } from './errors';
import type { BackendChoice, BackendName, EngineRequest, ResultOf } from './protocol';
import { WorkerConnection, type CallOptions, type Log } from './rpc';

export interface PoolOptions {
  readonly script: string;
  readonly backend: BackendChoice;
  readonly nativeBackendPath?: string;
  /** Number of workers (default: the number of cores). */
  readonly size?: number;
  readonly log?: Log;
  readonly cancelGraceMs?: number;
  readonly maxOldGenerationSizeMb?: number;
}

export function defaultWorkerCount(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, n);
}

/**
 * What one more compute worker holds before any model (its isolate, tfjs and the wasm module):
 * measured 38 MB per worker on a tiny MLP barrier (1 worker 110 MB peak, 2: 151 MB, 8: 376 MB).
 */
export const WORKER_BASE_BYTES = 48 * 2 ** 20;

/**
 * The workers to start: the requested number (default one per core), at most one per core (more
 * only share the cores and each holds its own runtime: `--workers 64` reached 2.3 GB on a tiny
 * MLP) and at most as many as `budget` holds at WORKER_BASE_BYTES each. `note` says why fewer
 * than requested, for a warning line.
 */
export function plannedWorkerCount(requested: number | undefined, budget: number, cores = defaultWorkerCount()): { count: number; note?: string } {
  const byBudget = Math.max(1, Math.floor(budget / WORKER_BASE_BYTES));
  const count = Math.max(1, Math.min(requested ?? cores, cores, byBudget));
  if (requested === undefined || count >= requested) return { count };
  const why = count === cores && cores < byBudget
    ? `this machine has ${cores} core${cores === 1 ? '' : 's'}`
    : `the memory budget of ${formatBytes(budget)} holds ${byBudget} worker${byBudget === 1 ? '' : 's'} of about ${formatBytes(WORKER_BASE_BYTES)} each`;
  return { count, note: `${requested} workers requested, using ${count}: ${why}` };
}

interface Slot {
  connection?: Promise<WorkerConnection>;
  /** Requests in flight on this slot (chosen by the pool, so it counts before the worker is up). */
  busy: number;
  /** Requests this slot has run (tests and logs use it to see how work was spread). */
  served: number;
}

export class WorkerPool {
  private readonly slots: Slot[];
  private disposed = false;

  constructor(private readonly options: PoolOptions) {
    const size = options.size ?? defaultWorkerCount();
    if (!Number.isSafeInteger(size) || size < 1) throw new EngineError('InvalidRequest', `worker count must be a positive integer, got ${size}`);
    this.slots = Array.from({ length: size }, () => ({ busy: 0, served: 0 }));
  }

  get size(): number {
    return this.slots.length;
  }

  /** Requests each worker slot has run so far. */
  get served(): number[] {
    return this.slots.map((s) => s.served);
  }

  /** The slot's worker, started (or restarted after a death) if needed. */
  connection(index: number): Promise<WorkerConnection> {
    if (this.disposed) return Promise.reject(new EngineError('Disposed', 'the compute client has been disposed'));
    const slot = this.slots[index];
    if (!slot.connection) {
      const starting = WorkerConnection.start({
        script: this.options.script,
        backend: this.options.backend,
        nativeBackendPath: this.options.nativeBackendPath,
        log: this.options.log,
        cancelGraceMs: this.options.cancelGraceMs,
        maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb,
      });
      slot.connection = starting;
      starting.then(
        (conn) => {
          conn.onDeath((e) => {
            if (!this.disposed) this.options.log?.(`${e.message}; a fresh worker starts on the next request`);
            if (slot.connection === starting) slot.connection = undefined;
          });
          if (this.disposed) void conn.terminate();
        },
        () => {
          // A worker that failed to start is retried on the next request (the error went to its caller).
          if (slot.connection === starting) slot.connection = undefined;
        },
      );
    }
    return slot.connection;
  }

  /** Starts the first `count` workers now, so requests do not wait for tfjs to initialise. */
  warmUp(count = 1): void {
    for (let i = 0; i < Math.min(count, this.slots.length); i++) this.connection(i).catch(() => undefined);
  }

  private leastBusy(): number {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.slots[i].busy < this.slots[best].busy) best = i;
    return best;
  }

  /** Runs a request on the least busy worker. */
  async run<K extends EngineRequest['kind']>(request: Extract<EngineRequest, { kind: K }>, opts: CallOptions = {}, index = this.leastBusy()): Promise<ResultOf[K]> {
    const slot = this.slots[index];
    slot.busy++;
    slot.served++;
    try {
      const conn = await this.connection(index);
      return await conn.call<K>(request, opts);
    } finally {
      slot.busy--;
    }
  }

  /** The backend the workers run on (starts the first worker if needed). */
  async backend(): Promise<BackendName> {
    return (await this.connection(0)).backend;
  }

  /** Test hook: kills one worker as a crash would (its pending requests reject with WorkerDied). */
  async terminateWorker(index: number): Promise<void> {
    const conn = this.slots[index].connection;
    if (conn) await (await conn).terminate();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        const c = s.connection;
        s.connection = undefined;
        if (c) await (await c.catch(() => undefined))?.terminate('was stopped (client disposed)');
      }),
    );
  }
}
