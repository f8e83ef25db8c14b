/**
 * `EngineClient`: how the CLI, the extension and the demo talk to the compute workers.
 * Requests go to a pool of worker threads (dist/worker.js); a `barrier` request is planned here:
 * one `align` in worker 0 while the other workers start on the naive path (it needs no
 * permutation), then every worker takes `evaluatePath` chunks of what is left (guided
 * self-scheduling: chunks shrink so the workers finish together); the results are assembled into
 * a BarrierResult. Workers cache the data and first-layer outputs between chunks (pathCache).
 */
import * as path from 'node:path';
import type { Progress } from '../core/checkpoint';
import { barrierFromCurve, lambdaGrid } from '../core/barrier';
import { quietNativeLogs } from './nativeLogs';
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
  AlignRequest,
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

/** The lambdas of one path on one split still to evaluate (indices into the grid). */
interface Queue {
  readonly split: 'test' | 'train';
  readonly path: 'naive' | 'aligned';
  readonly todo: number[];
  /** The aligned path opens when the alignment is done. */
  open: boolean;
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

      // The naive path needs no permutation: its lambdas start on the other workers while one
      // worker aligns; the aligned path's lambdas join the queue when the alignment is done.
      const alignRequest: AlignRequest | undefined = req.align
        ? // The data lets the align's equivalence check run on real examples rather than random inputs.
          { kind: 'align', a: req.a, b: req.b, spec: req.spec, model: req.model, method: 'weight', seed: req.seed, maxIter: req.maxIter, allowNonFinite: req.allowNonFinite, data: { ...req.data, split: splits[0] } }
        : undefined;
      // theta_aligned(0) = 1*A + 0*pi(B) = A = theta_naive(0) exactly (finite weights: the align
      // refuses non-finite ones unless allowed), so the aligned path reuses the naive lambda 0.
      const shareStart = alignRequest !== undefined && !req.allowNonFinite && lambdas[0] === 0;
      const queues: Queue[] = [];
      for (const split of splits) {
        queues.push({ split, path: 'naive', todo: lambdas.map((_, i) => i), open: true });
        if (alignRequest) queues.push({ split, path: 'aligned', todo: lambdas.map((_, i) => i).filter((i) => !(shareStart && i === 0)), open: false });
      }
      const totalPoints = queues.reduce((s, q) => s + q.todo.length, 0);
      const values = new Map<string, { loss: number; acc: number }>();
      const at = (split: string, p: string, i: number): string => `${split}/${p}/${i}`;

      // Progress: the align counts as this many lambda evaluations (about its cost on MNIST MLPs).
      const alignWeight = alignRequest ? 3 : 0;
      let alignFraction = 0;
      let pointsDone = 0;
      const inFlight = new Map<number, number>();
      let shown = 0;
      let requests = 0;
      const report = (stage: string): void => {
        const partial = [...inFlight.values()].reduce((s, v) => s + v, 0);
        shown = Math.max(shown, Math.min(1, (alignWeight * alignFraction + pointsDone + partial) / (alignWeight + totalPoints)));
        progress.push({ stage, fraction: shown, message: `${requests} chunks on ${this.pool.size} worker(s)` });
      };

      let align: AlignResult | undefined;
      let alignDone: Promise<void> = Promise.resolve();
      const lanes: Promise<void>[] = [];
      const perms = (): Readonly<Record<string, readonly number[]>> | undefined => align?.perms;
      // Guided self-scheduling: a free worker takes a share of what is left, so the chunks
      // shrink towards the end and the workers finish together.
      const take = (split: string | undefined): { q: Queue; points: number[] } | undefined => {
        const left = queues.reduce((s, q) => s + q.todo.length, 0);
        const ready = (x: Queue): boolean => x.open && x.todo.length > 0;
        // Stay on the split this worker has cached (its data and first-layer outputs) while it has work.
        const q = queues.find((x) => ready(x) && x.split === split) ?? queues.find(ready);
        if (!q) return undefined;
        const n = Math.max(1, Math.min(q.todo.length, Math.ceil(left / (2 * this.pool.size))));
        return { q, points: q.todo.splice(0, n) };
      };
      const lane = async (slot: number): Promise<void> => {
        let lastSplit: string | undefined;
        for (;;) {
          const job = take(lastSplit);
          if (!job) {
            if (queues.some((q) => !q.open && q.todo.length > 0)) {
              await alignDone;
              continue;
            }
            return;
          }
          const id = requests++;
          const { q, points } = job;
          lastSplit = q.split;
          const p = q.path === 'aligned' ? perms() : undefined;
          const request: EvaluatePathRequest = {
            kind: 'evaluatePath',
            a: req.a,
            b: req.b,
            ...(p ? { perms: p } : {}),
            ...(req.spec !== undefined ? { spec: req.spec } : {}),
            lambdas: points.map((i) => lambdas[i]),
            data: { ...req.data, split: q.split },
            ...(req.model !== undefined ? { model: req.model } : {}),
            ...(req.resetBatchNorm !== undefined ? { resetBatchNorm: req.resetBatchNorm } : {}),
          };
          inFlight.set(id, 0);
          const r = await this.pool.run<'evaluatePath'>(
            request,
            {
              signal: controller.signal,
              onProgress: (pr) => {
                inFlight.set(id, Math.max(inFlight.get(id) ?? 0, points.length * Math.min(1, pr.fraction ?? 0)));
                report(`evaluate: ${pr.stage}`);
              },
            },
            slot,
          );
          if (r.loss.length !== points.length || r.acc.length !== points.length) {
            throw new EngineError('InvalidMessage', `invalid evaluatePath result: ${r.loss.length} values for ${points.length} lambdas on the ${q.path} path`);
          }
          points.forEach((i, k) => values.set(at(q.split, q.path, i), { loss: r.loss[k], acc: r.acc[k] }));
          inFlight.delete(id);
          pointsDone += points.length;
          report('evaluate');
        }
      };
      const used = new Set<number>();
      const tracked = (slot: number): Promise<void> => {
        used.add(slot);
        return lane(slot);
      };
      report(alignRequest ? 'align' : 'evaluate');
      if (alignRequest) {
        alignDone = this.pool
          .run<'align'>(alignRequest, {
            signal: controller.signal,
            onProgress: (p) => {
              alignFraction = Math.max(alignFraction, Math.min(1, p.fraction ?? 0));
              report(`align: ${p.stage}`);
            },
          }, 0)
          .then((r) => {
            align = r;
            alignFraction = 1;
            for (const q of queues) q.open = true;
          });
        // The aligning worker joins the evaluation when it is done.
        lanes.push(alignDone.then(() => tracked(0)));
        for (let s = 1; s < this.pool.size; s++) lanes.push(tracked(s));
        // A failure anywhere stops every part (lanes waiting on the align see it rejected).
        await Promise.all([alignDone, ...lanes]);
      } else {
        for (let s = 0; s < this.pool.size; s++) lanes.push(tracked(s));
        await Promise.all(lanes);
      }
      if (shareStart) for (const split of splits) values.set(at(split, 'aligned', 0), values.get(at(split, 'naive', 0))!);

      const curve = (split: 'test' | 'train'): BarrierCurve => {
        const metrics = (p: 'naive' | 'aligned'): PathMetrics => {
          const points = lambdas.map((l, i) => {
            const m = values.get(at(split, p, i));
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
      return {
        ...top,
        backend: align?.backend ?? (await this.pool.backend()),
        seconds: (performance.now() - started) / 1000,
        workers: used.size,
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
}
