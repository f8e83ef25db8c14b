/**
 * `EngineClient`: how the CLI, the extension and the demo talk to the compute workers.
 * Requests go to a pool of worker threads (dist/worker.js); a `barrier` request is planned here:
 * one `align` in one worker, then the λ grid split into `evaluatePath` chunks across the pool
 * (naive and aligned paths, each split), assembled into a BarrierResult.
 */
import * as path from 'node:path';
import type { Progress } from '../core/checkpoint';
import { barrierFromCurve, lambdaGrid } from '../core/barrier';
import { quietNativeLogs } from './backend';
import { EngineError } from './errors';
import { WorkerPool, defaultWorkerCount } from './pool';
import type {
  AlignResult,
  BackendChoice,
  BackendName,
  BarrierCurve,
  BarrierRequest,
  BarrierResult,
  EngineRequest,
  EvaluatePathRequest,
  EvaluatePathResult,
  PathMetrics,
  ResultOf,
} from './protocol';
import { throttleProgress, type Log } from './rpc';
import { validateRequest } from './validate';

export interface EngineClientOptions {
  readonly backend: BackendChoice;
  /** Worker threads for independent work (default: number of cores). */
  readonly workers?: number;
  /** The worker bundle (default: worker.js beside this bundle, i.e. dist/worker.js). */
  readonly workerScript?: string;
  /** Receives worker log lines (backend choice, tfjs notices); nothing is printed otherwise. */
  readonly log?: (line: string) => void;
  /** How long a cancelled request may take to stop before its worker is terminated (default 1000 ms). */
  readonly cancelGraceMs?: number;
}

export interface RequestOptions {
  readonly onProgress?: (p: Progress) => void;
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
      script: opts.workerScript ?? path.join(__dirname, 'worker.js'),
      backend: opts.backend,
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
    if (r.kind === 'barrier') return this.barrier(r, opts) as Out;
    return this.pool.run(r, opts) as Out;
  }

  /** Terminates every worker; pending requests reject. */
  dispose(): Promise<void> {
    return this.pool.dispose();
  }

  /** Test hook: terminates one worker as a crash would (its requests reject with WorkerDied). */
  _debugTerminateWorker(index = 0): Promise<void> {
    return this.pool.terminateWorker(index);
  }

  // ------------------------------------------------------------------ barrier plan

  private async barrier(req: BarrierRequest, opts: RequestOptions): Promise<BarrierResult> {
    const started = performance.now();
    // One controller for the whole plan: the caller's cancel, or the first failure, stops every part.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    if (opts.signal?.aborted) throw new EngineError('Cancelled', 'barrier cancelled');
    opts.signal?.addEventListener('abort', onAbort);
    const progress = throttleProgress((p) => opts.onProgress?.(p));
    try {
      // Every worker will get λ chunks: start them while the alignment runs.
      this.pool.warmUp(this.pool.size);
      const splits: ('test' | 'train')[] = req.data.split === 'both' ? ['test', 'train'] : [req.data.split ?? 'test'];
      const lambdas = lambdaGrid(req.steps);
      const alignShare = req.align ? 0.3 : 0;

      let align: AlignResult | undefined;
      if (req.align) {
        align = await this.pool.run<'align'>(
          // The data lets the align's equivalence check run on real examples rather than random inputs.
          { kind: 'align', a: req.a, b: req.b, spec: req.spec, model: req.model, method: 'weight', seed: req.seed, maxIter: req.maxIter, allowNonFinite: req.allowNonFinite, data: { ...req.data, split: splits[0] } },
          {
            signal: controller.signal,
            onProgress: (p) => progress.push({ ...p, stage: `align: ${p.stage}`, fraction: p.fraction === undefined ? undefined : alignShare * p.fraction }),
          },
        );
      }

      interface Task {
        readonly split: 'test' | 'train';
        readonly path: 'naive' | 'aligned';
        readonly lambdas: number[];
      }
      const paths: ('naive' | 'aligned')[] = align ? ['naive', 'aligned'] : ['naive'];
      const tasks: Task[] = [];
      for (const split of splits) for (const p of paths) for (const part of chunk(lambdas, this.pool.size)) tasks.push({ split, path: p, lambdas: part });

      const fractions = new Array<number>(tasks.length).fill(0);
      const report = (stage: string): void => {
        const done = fractions.reduce((s, f) => s + f, 0) / tasks.length;
        progress.push({ stage, fraction: alignShare + (1 - alignShare) * done, message: `${tasks.length} chunks on ${this.pool.size} worker(s)` });
      };
      report('evaluate');
      const perms = align?.perms;
      const results = await this.runLimited(tasks, this.pool.size, async (t, i) => {
        const request: EvaluatePathRequest = {
          kind: 'evaluatePath',
          a: req.a,
          b: req.b,
          ...(t.path === 'aligned' && perms ? { perms } : {}),
          ...(req.spec !== undefined ? { spec: req.spec } : {}),
          lambdas: t.lambdas,
          data: { ...req.data, split: t.split },
          ...(req.model !== undefined ? { model: req.model } : {}),
          ...(req.resetBatchNorm !== undefined ? { resetBatchNorm: req.resetBatchNorm } : {}),
        };
        const r = await this.pool.run<'evaluatePath'>(request, {
          signal: controller.signal,
          onProgress: (p) => {
            fractions[i] = Math.min(1, Math.max(fractions[i], p.fraction ?? 0));
            report(`evaluate: ${p.stage}`);
          },
        });
        fractions[i] = 1;
        report('evaluate');
        return r;
      });

      const curve = (split: 'test' | 'train'): BarrierCurve => {
        const metrics = (p: 'naive' | 'aligned'): PathMetrics => {
          const byLambda = new Map<number, { loss: number; acc: number }>();
          tasks.forEach((t, i) => {
            if (t.split !== split || t.path !== p) return;
            const r: EvaluatePathResult = results[i];
            r.lambdas.forEach((l, k) => byLambda.set(l, { loss: r.loss[k], acc: r.acc[k] }));
          });
          const points = lambdas.map((l) => {
            const m = byLambda.get(l);
            if (!m) throw new EngineError('InvalidMessage', `invalid evaluatePath result: no value for lambda ${l} on the ${p} path`);
            return m;
          });
          return { loss: points.map((m) => m.loss), acc: points.map((m) => m.acc) };
        };
        const naive = metrics('naive');
        const aligned = align ? metrics('aligned') : undefined;
        return {
          lambdas,
          naive,
          ...(aligned ? { aligned } : {}),
          barrier: { naive: barrierFromCurve(lambdas, naive.loss), ...(aligned ? { aligned: barrierFromCurve(lambdas, aligned.loss) } : {}) },
        };
      };

      const curves = splits.map((s) => [s, curve(s)] as const);
      const top = curves[0][1];
      const alignSummary: Omit<AlignResult, 'matrices'> | undefined = align ? (({ matrices: _m, ...rest }) => rest)(align) : undefined;
      const usedWorkers = Math.min(this.pool.size, tasks.length);
      return {
        ...top,
        backend: align?.backend ?? (await this.pool.backend()),
        seconds: (performance.now() - started) / 1000,
        workers: usedWorkers,
        ...(curves.length > 1 ? { splits: Object.fromEntries(curves) } : {}),
        ...(alignSummary ? { align: alignSummary } : {}),
      };
    } catch (e) {
      controller.abort();
      if (opts.signal?.aborted) throw new EngineError('Cancelled', 'barrier cancelled');
      throw e;
    } finally {
      progress.stop();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs `work` over `items` with at most `limit` in flight; results in item order. */
  private async runLimited<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results = new Array<R>(items.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i], i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
    return results;
  }
}
