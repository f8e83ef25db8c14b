/**
 * Both ends of the request/response protocol of protocol.ts.
 * - `serveRequests` runs inside the worker: validates each message, runs the handler with an
 *   AbortSignal and a throttled progress callback, and always answers with exactly one
 *   `result` or `error` (a handler that throws becomes a serialized error, never a lost reply).
 * - `WorkerConnection` runs on the caller's side over one worker_threads Worker: matches
 *   replies to requests by id, validates them, cancels, and rejects every pending request
 *   when the worker dies.
 */
import { Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import type { Progress } from '../core/checkpoint';
import { EngineError, deserializeError, serializeError } from './errors';
import type { BackendChoice, BackendName, EngineRequest, FromWorker, ResultOf, ToWorker } from './protocol';
import { validateFromWorker, validateRequest, validateResult, validateToWorker } from './validate';

export type Log = (line: string) => void;

/** What a handler gets besides its request. */
export interface RequestContext {
  readonly signal: AbortSignal;
  readonly onProgress: (p: Progress) => void;
  readonly log: Log;
}

export type RequestHandler = (req: EngineRequest, ctx: RequestContext) => Promise<ResultOf[keyof ResultOf]>;

// ---------------------------------------------------------------- progress throttling

/**
 * Passes progress on at most about once per `intervalMs`, except that a new stage, a new
 * iteration (each sweep/epoch), a curve point or completion (fraction 1) goes out at once. A throttled update
 * is not lost: the latest one is sent when the interval has passed. `stop()` drops anything
 * pending (the final message of a request is its result).
 */
export function throttleProgress(send: (p: Progress) => void, intervalMs = 1000): { push(p: Progress): void; stop(): void } {
  let lastSent = -Infinity;
  let last: Progress | undefined;
  let pending: Progress | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const flush = (): void => {
    timer = undefined;
    if (stopped || !pending) return;
    const p = pending;
    pending = undefined;
    lastSent = Date.now();
    last = p;
    send(p);
  };
  return {
    push(p) {
      if (stopped) return;
      // A curve point is data, not just news: it is never throttled away.
      const milestone = !last || p.stage !== last.stage || p.iteration !== last.iteration || p.fraction === 1 || p.point !== undefined;
      pending = p;
      if (milestone || Date.now() - lastSent >= intervalMs) {
        if (timer) clearTimeout(timer);
        flush();
      } else if (!timer) {
        timer = setTimeout(flush, intervalMs - (Date.now() - lastSent));
        timer.unref();
      }
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------- worker side

/** Whole, unshared ArrayBuffers of typed arrays in a result: moved rather than copied. */
export function collectTransferables(value: unknown, out: ArrayBuffer[] = [], seen = new Set<unknown>()): ArrayBuffer[] {
  if (typeof value !== 'object' || value === null || seen.has(value)) return out;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    const buf = value.buffer;
    // Only a view covering its whole buffer: a pooled or shared buffer must not be detached.
    if (buf instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === buf.byteLength && !seen.has(buf)) {
      seen.add(buf);
      out.push(buf);
    }
    return out;
  }
  for (const v of Array.isArray(value) ? value : Object.values(value)) collectTransferables(v, out, seen);
  return out;
}

/** Serves requests arriving on `port` (the worker's parentPort) with `handle`. */
export function serveRequests(port: MessagePort, handle: RequestHandler, log: Log): void {
  const running = new Map<number, AbortController>();
  const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

  const run = async (id: number, request: EngineRequest): Promise<void> => {
    const controller = new AbortController();
    running.set(id, controller);
    const progress = throttleProgress((p) => post({ type: 'progress', id, progress: p }));
    try {
      const result = await handle(request, { signal: controller.signal, onProgress: (p) => progress.push(p), log });
      progress.stop();
      if (controller.signal.aborted) throw new EngineError('Cancelled', `${request.kind} cancelled`);
      post({ type: 'result', id, result }, collectTransferables(result));
    } catch (e) {
      progress.stop();
      const error = controller.signal.aborted ? serializeError(new EngineError('Cancelled', `${request.kind} cancelled`)) : serializeError(e);
      post({ type: 'error', id, error });
    } finally {
      running.delete(id);
    }
  };

  port.on('message', (raw: unknown) => {
    let msg: ToWorker;
    try {
      msg = validateToWorker(raw);
    } catch (e) {
      const id = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).id : undefined;
      if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) post({ type: 'error', id, error: serializeError(e) });
      else log(`ignored a message without a valid id: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort(new EngineError('Cancelled', 'cancelled'));
      return;
    }
    if (running.has(msg.id)) {
      post({ type: 'error', id: msg.id, error: serializeError(new EngineError('InvalidMessage', `invalid request: id ${msg.id} is already running`)) });
      return;
    }
    void run(msg.id, msg.request);
  });
}

// ---------------------------------------------------------------- caller side

export interface CallOptions<K extends EngineRequest['kind'] = EngineRequest['kind']> {
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
  /** Internal: lets the pool know when a call ends. */
  readonly kind?: K;
}

interface Pending {
  readonly request: EngineRequest;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: Progress) => void;
  cleanup(): void;
}

export interface WorkerStartOptions {
  readonly script: string;
  readonly backend: BackendChoice;
  /** The tfjs-node folder the `tensorflow` backend loads from (else REBASIN_TFJS_NODE, else node_modules). */
  readonly nativeBackendPath?: string;
  readonly log?: Log;
  /** V8 heap cap for the worker; exceeding it ends the worker (WorkerDied), not the caller. */
  readonly maxOldGenerationSizeMb?: number;
  /** How long a cancelled request may take to answer before its worker is terminated. */
  readonly cancelGraceMs?: number;
}

/** A short description of a request for error messages: kind and the files it reads. */
export function describeRequest(r: EngineRequest): string {
  const base = (p: string): string => p.split(/[\\/]/).pop() ?? p;
  switch (r.kind) {
    case 'align':
    case 'barrier':
    case 'evaluatePath':
    case 'diff':
      return `${r.kind} request (${base(r.b)} onto ${base(r.a)})`;
    case 'merge':
      return `merge request (${r.inputs.map(base).join(', ')})`;
    case 'equivalence':
      return `equivalence request (${base(r.other)} against ${base(r.b)})`;
    case 'diffTensor':
      return `diffTensor request (\`${r.tensor}\` of ${base(r.b)} against ${base(r.a)})`;
    case 'tensorStats':
      return `tensorStats request (${base(r.path)}: \`${r.tensor}\`)`;
    case 'scan':
      return `scan request (${base(r.path)})`;
    case 'train':
      return `train request (${base(r.out)})`;
    case 'backend':
      return 'backend request';
  }
}

function pipeLines(stream: Readable | null | undefined, log: Log): void {
  if (!stream) return;
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log(line);
  });
  stream.on('end', () => {
    if (buffered.trim()) log(buffered);
    buffered = '';
  });
}

/** One worker thread and the requests pending on it. */
export class WorkerConnection {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;
  private terminating: string | undefined;
  private readonly deathListeners: ((e: Error) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly backend: BackendName,
    private readonly options: WorkerStartOptions,
  ) {}

  /** Starts a worker and waits until it reports its backend (or fails to start). */
  static start(options: WorkerStartOptions): Promise<WorkerConnection> {
    const log = options.log ?? (() => undefined);
    let worker: Worker;
    try {
      worker = new Worker(options.script, {
        workerData: { backend: options.backend, nativeBackendPath: options.nativeBackendPath },
        // Captured so tfjs banners and handler logs reach the caller's log, not the user's terminal.
        stdout: true,
        stderr: true,
        resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
      });
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      return Promise.reject(new EngineError('WorkerDied', `compute worker failed to start: ${why}`, options.script, { cause: e }));
    }
    pipeLines(worker.stdout, log);
    pipeLines(worker.stderr, log);
    return new Promise<WorkerConnection>((resolve, reject) => {
      const fail = (e: Error): void => {
        cleanup();
        void worker.terminate();
        reject(e);
      };
      const onMessage = (raw: unknown): void => {
        let msg: FromWorker;
        try {
          msg = validateFromWorker(raw);
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (msg.type === 'ready') {
          cleanup();
          resolve(new WorkerConnection(worker, msg.backend, options));
        } else if (msg.type === 'error') {
          fail(deserializeError(msg.error));
        }
      };
      const onError = (e: Error): void => fail(new EngineError('WorkerDied', `compute worker failed to start: ${e.message.split('\n')[0]}`, options.script, { cause: e }));
      const onExit = (code: number): void => fail(new EngineError('WorkerDied', `compute worker exited with code ${code} before it was ready`, options.script));
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).then((conn) => {
      conn.listen();
      return conn;
    });
  }

  private listen(): void {
    const log = this.options.log ?? (() => undefined);
    this.worker.on('message', (raw: unknown) => this.onMessage(raw, log));
    this.worker.on('messageerror', (e: Error) => log(`compute worker sent a message that could not be deserialised: ${e.message}`));
    this.worker.on('error', (e: Error) => {
      const oom = (e as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.die(oom ? 'ran out of memory' : `crashed: ${e.message.split('\n')[0]}`);
    });
    this.worker.on('exit', (code: number) => this.die(this.terminating ?? `exited with code ${code}`));
  }

  private onMessage(raw: unknown, log: Log): void {
    let msg: FromWorker;
    try {
      msg = validateFromWorker(raw);
    } catch (e) {
      const id = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).id : undefined;
      const p = typeof id === 'number' ? this.pending.get(id) : undefined;
      const err = e instanceof Error ? e : new Error(String(e));
      if (p) this.settle(typeof id === 'number' ? id : -1, (q) => q.reject(err));
      else log(`ignored a malformed message from the compute worker: ${err.message}`);
      return;
    }
    if (msg.type === 'ready') return;
    const p = this.pending.get(msg.id);
    if (!p) return; // Answer to a request already settled (cancelled or timed out).
    if (msg.type === 'progress') {
      try {
        p.onProgress?.(msg.progress);
      } catch (e) {
        log(`progress callback threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else if (msg.type === 'error') {
      const err = deserializeError(msg.error);
      this.settle(msg.id, (q) => q.reject(err));
    } else {
      const result = msg.result;
      this.settle(msg.id, (q) => {
        try {
          q.resolve(validateResult(q.request.kind, result));
        } catch (e) {
          q.reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }
  }

  private settle(id: number, f: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.cleanup();
    f(p);
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = new EngineError('WorkerDied', `compute worker ${why}`);
    for (const [id, p] of [...this.pending]) {
      this.settle(id, (q) => q.reject(new EngineError('WorkerDied', `compute worker ${why} during the ${describeRequest(q.request)}`)));
    }
    for (const l of this.deathListeners) l(this.dead);
  }

  /** False once the worker exited, crashed or was terminated. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  onDeath(listener: (e: Error) => void): void {
    this.deathListeners.push(listener);
  }

  /** Sends one request; resolves with its validated result or rejects with its typed error. */
  call<K extends EngineRequest['kind']>(request: Extract<EngineRequest, { kind: K }>, opts: CallOptions = {}): Promise<ResultOf[K]> {
    return new Promise<ResultOf[K]>((resolve, reject) => {
      if (this.dead) {
        reject(new EngineError('WorkerDied', `${this.dead.message}; cannot send the ${describeRequest(request)}`));
        return;
      }
      try {
        validateRequest(request);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(new EngineError('Cancelled', `${request.kind} cancelled`));
        return;
      }
      const id = this.nextId++;
      let graceTimer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        if (!this.pending.has(id)) return;
        this.post({ type: 'cancel', id });
        // Give the worker a moment to stop between steps and answer; a worker stuck in one long
        // synchronous step is terminated if nothing else runs on it.
        graceTimer = setTimeout(() => {
          const alone = this.pending.size === 1;
          this.settle(id, (q) => q.reject(new EngineError('Cancelled', `${request.kind} cancelled`)));
          if (alone) void this.terminate();
        }, this.options.cancelGraceMs ?? 1000);
      };
      this.pending.set(id, {
        request,
        // A request cancelled by the caller ends as Cancelled whatever the worker answers.
        resolve: (v) => (signal?.aborted ? reject(new EngineError('Cancelled', `${request.kind} cancelled`)) : resolve(v as ResultOf[K])),
        reject: (e) => (signal?.aborted ? reject(new EngineError('Cancelled', `${request.kind} cancelled`)) : reject(e)),
        onProgress: opts.onProgress,
        cleanup: () => {
          signal?.removeEventListener('abort', onAbort);
          if (graceTimer) clearTimeout(graceTimer);
        },
      });
      signal?.addEventListener('abort', onAbort);
      this.post({ type: 'request', id, request });
    });
  }

  private post(msg: ToWorker): void {
    try {
      this.worker.postMessage(msg);
    } catch (e) {
      this.die(`could not be sent a message (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  /** Ends the worker; pending requests reject with WorkerDied (`why` completes "compute worker ..."). */
  async terminate(why = 'was terminated'): Promise<void> {
    this.terminating ??= why;
    // Dead at once, so that no request is sent to it while it shuts down (the pool replaces it).
    this.die(why);
    await this.worker.terminate();
  }

  /** Test hook: the thread id, to tell workers of a pool apart. */
  get threadId(): number {
    return this.worker.threadId;
  }
}
