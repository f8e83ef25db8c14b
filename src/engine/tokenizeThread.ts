/**
 * Raw text is tokenized in a thread of its own, under a time budget, because a tokenizer.json is
 * an input like any other: its pre-tokenizer regex may backtrack catastrophically (`(a+)+$` on a
 * long run of "a"), and a JavaScript regex cannot be interrupted from the thread that runs it.
 * The compute worker starts one more worker from its own script (role `tokenize`), waits for the
 * windows, and terminates it when the budget runs out or the request is cancelled: one line
 * naming the tokenizer, and nothing keeps running.
 */
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { DataError, loadTokenizer, tokenizeTextFile, type TextTokenizeFn, type TextWindows } from '../core/data';
import { EngineError, deserializeError, serializeError } from './errors';
import type { SerializedError } from './protocol';

/** What the tokenizing thread gets in `workerData`. */
interface TokenizeJob {
  readonly role: 'tokenize';
  readonly file: string;
  readonly tokenizer: string;
  readonly seqLen: number;
  readonly limit?: number;
  /** The memory budget the windows must fit (tokenizeTextFile). */
  readonly memoryBudget?: number;
}

type TokenizeReply = { readonly ok: true; readonly windows: TextWindows } | { readonly ok: false; readonly error: SerializedError };

/** The compute worker's script, set by its entry (worker.ts); unset in-process (tests), where text is tokenized inline. */
let workerScript: string | undefined;

export function setTokenizeScript(script: string): void {
  workerScript = script;
}

/**
 * Time allowed for tokenizing a text: 10 s plus 20 s per MB of text. Real tokenizers run at
 * 0.5 MB/s and more in JavaScript; a backtracking regex needs orders of magnitude longer.
 */
export function tokenizeBudgetMs(textBytes: number): number {
  return 10_000 + Math.ceil(textBytes / 50_000) * 1000;
}

function isTokenizeJob(data: unknown): data is TokenizeJob {
  return typeof data === 'object' && data !== null && (data as { role?: unknown }).role === 'tokenize';
}

/** In the tokenizing thread: does the job in workerData and posts the windows (or the error). True when this thread is one. */
export function serveTokenizeJob(): boolean {
  const job: unknown = workerData;
  if (!isTokenizeJob(job) || !parentPort) return false;
  const port = parentPort;
  void (async () => {
    let reply: TokenizeReply;
    try {
      const windows = await tokenizeTextFile(job.file, await loadTokenizer(job.tokenizer), job.seqLen, job.limit, job.memoryBudget);
      reply = { ok: true, windows };
    } catch (e) {
      reply = { ok: false, error: serializeError(e) };
    }
    port.postMessage(reply, reply.ok ? [reply.windows.ids.buffer as ArrayBuffer] : []);
  })();
  return true;
}

/** A TextTokenizeFn for loadTokenData that runs in its own thread under the budget, cancelled by `signal`. */
export function threadTokenizer(signal?: AbortSignal, budgetMs: (textBytes: number) => number = tokenizeBudgetMs): TextTokenizeFn | undefined {
  const script = workerScript;
  if (script === undefined) return undefined;
  return (file, tokenizer, seqLen, limit, memoryBudget) =>
    new Promise<TextWindows>((resolve, reject) => {
      if (signal?.aborted) return reject(new EngineError('Cancelled', 'tokenizing cancelled'));
      let bytes = 0;
      try {
        bytes = statSync(file).size;
      } catch {
        // the thread's reader reports a missing file in its own words
      }
      const job: TokenizeJob = { role: 'tokenize', file, tokenizer, seqLen, ...(limit !== undefined ? { limit } : {}), ...(memoryBudget !== undefined ? { memoryBudget } : {}) };
      const worker = new Worker(script, { workerData: job, stdout: true, stderr: true });
      const timeBudget = budgetMs(bytes);
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        fn();
      };
      const timer = setTimeout(() => finish(() => reject(new DataError(
        'Unsupported',
        `${path.basename(tokenizer)}: tokenizing ${path.basename(file)} took over ${Math.round(timeBudget / 1000)} s (a pre-tokenizer or normalizer pattern that backtracks without end?): check the tokenizer, or give token ids as .npy/.npz/.safetensors`,
        tokenizer,
      ))), timeBudget);
      const onAbort = (): void => finish(() => reject(new EngineError('Cancelled', 'tokenizing cancelled')));
      signal?.addEventListener('abort', onAbort);
      worker.on('message', (reply: TokenizeReply) => finish(() => (reply.ok ? resolve(reply.windows) : reject(deserializeError(reply.error)))));
      worker.on('error', (e: Error) => finish(() => reject(new EngineError('WorkerDied', `${path.basename(file)}: the tokenizing thread failed: ${e.message.split('\n')[0]}`, file))));
      worker.on('exit', (code) => finish(() => reject(new EngineError('WorkerDied', `${path.basename(file)}: the tokenizing thread exited (code ${code}) before it finished`, file))));
    });
}
