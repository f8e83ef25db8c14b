/**
 * `EngineClient`: how the CLI, the extension and the demo talk to the compute workers.
 * Requests go to a pool of worker threads (dist/worker.js). A `barrier` request is a job over
 * the whole pool: the engine's barrier job (barrierJob.ts) plans and runs it on this pool; the
 * client only hands it over and passes its progress and curve points back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CurvePoint, Progress } from '../core/checkpoint';
import { quietNativeLogs } from './nativeLogs';
import { runBarrierJob } from './barrierJob';
import { WorkerPool, defaultWorkerCount } from './pool';
import type { BackendChoice, BackendName, EngineRequest, ResultOf } from './protocol';
import type { Log } from './rpc';
import { validateRequest } from './validate';

export interface EngineClientOptions {
  readonly backend: BackendChoice;
  /** Folder of a @tensorflow/tfjs-node package for the `tensorflow` backend (default: REBASIN_TFJS_NODE, else node_modules). */
  readonly nativeBackendPath?: string;
  /** Worker threads for independent work (default: number of cores). */
  readonly workers?: number;
  /** The worker bundle (default: workerBoot.js, else worker.js, beside this bundle: dist/). */
  readonly workerScript?: string;
  /** Receives worker log lines (backend choice, tfjs notices); nothing is printed otherwise. */
  readonly log?: (line: string) => void;
  /** How long a cancelled request may take to stop before its worker is terminated (default 1000 ms). */
  readonly cancelGraceMs?: number;
}

export interface RequestOptions {
  readonly onProgress?: (p: Progress) => void;
  /** Each loss-curve point as soon as it is evaluated (barrier and evaluatePath requests), in completion order. */
  readonly onPoint?: (p: CurvePoint) => void;
  readonly signal?: AbortSignal;
}

/** Splits `items` into at most `parts` contiguous, nearly equal, non-empty chunks. */
export function chunk<T>(items: readonly T[], parts: number): T[][] {
  const n = Math.max(1, Math.min(parts, items.length));
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const take = Math.floor(items.length / n) + (i < items.length % n ? 1 : 0);
    out.push(items.slice(at, at + take));
    at += take;
  }
  return out;
}

/**
 * The worker bundle beside this one: started through workerBoot.js (from V8's code cache, see
 * workerBoot.ts) when the build put it there, else worker.js itself (a package without it).
 */
function defaultWorkerScript(): string {
  const boot = path.join(__dirname, 'workerBoot.js');
  return fs.existsSync(boot) ? boot : path.join(__dirname, 'worker.js');
}

export class EngineClient {
  private constructor(
    private readonly pool: WorkerPool,
    private readonly log: Log,
  ) {}

  /** Creates the client and starts its first worker in the background (errors surface on first use). */
  static start(opts: EngineClientOptions): EngineClient {
    quietNativeLogs();
    const log = opts.log ?? (() => undefined);
    const pool = new WorkerPool({
      script: opts.workerScript ?? defaultWorkerScript(),
      backend: opts.backend,
      nativeBackendPath: opts.nativeBackendPath,
      size: opts.workers ?? defaultWorkerCount(),
      log,
      cancelGraceMs: opts.cancelGraceMs,
    });
    pool.warmUp();
    return new EngineClient(pool, log);
  }

  /** Number of worker threads in the pool. */
  get workers(): number {
    return this.pool.size;
  }

  /** Requests run by each worker slot so far (how work was spread). */
  get workerLoad(): number[] {
    return this.pool.served;
  }

  /** The backend the workers compute on. */
  backend(): Promise<BackendName> {
    return this.pool.backend();
  }

  /** Sends one request; resolves with its result or rejects with an EngineError whose `kind` says why. */
  request<R extends EngineRequest>(req: R, opts: RequestOptions = {}): Promise<ResultOf[R['kind']]> {
    type Out = Promise<ResultOf[R['kind']]>;
    try {
      validateRequest(req);
    } catch (e) {
      return Promise.reject(e);
    }
    const r: EngineRequest = req;
    const { onProgress, onPoint, signal } = opts;
    const call = {
      signal,
      onProgress: onPoint
        ? (p: Progress): void => {
            if (p.point) onPoint(p.point);
            onProgress?.(p);
          }
        : onProgress,
    };
    if (r.kind === 'barrier') return runBarrierJob(r, this.pool, call) as Out;
    return this.pool.run(r, call) as Out;
  }

  /** Terminates every worker; pending requests reject. */
  dispose(): Promise<void> {
    return this.pool.dispose();
  }

  /** Test hook: terminates one worker as a crash would (its requests reject with WorkerDied). */
  _debugTerminateWorker(index = 0): Promise<void> {
    return this.pool.terminateWorker(index);
  }
}
