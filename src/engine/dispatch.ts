/**
 * Maps each request kind to its handler. Every handler has the same shape:
 * `(request, ctx) => Promise<result>`, checks `ctx.signal` between steps, and reports through
 * `ctx.onProgress` (throttled by rpc.ts) and `ctx.log` (the caller's log, never the user's face).
 */
import type { Progress } from '../core/checkpoint';
import { currentBackend } from './backend';
import { runBarrierJob, type JobWorkers } from './barrierJob';
import type { EngineRequest, ResultOf } from './protocol';
import { alignHandler } from './handlers/align';
import { backendHandler } from './handlers/backend';
import { diffHandler } from './handlers/diff';
import { diffTensorHandler } from './handlers/diffTensor';
import { scanHandler } from './handlers/scan';
import { evaluatePathHandler } from './handlers/evaluatePath';
import { equivalenceHandler } from './handlers/equivalence';
import { mergeHandler } from './handlers/merge';
import { tensorStatsHandler } from './handlers/tensorStats';
import { trainHandler } from './handlers/train';
import { withFileNamed } from './errorNaming';
import type { HandlerContext } from './handlerContext';

/** Runs one validated request in this worker; its errors name a file (errorNaming.ts). */
export async function dispatch(request: EngineRequest, ctx: HandlerContext): Promise<ResultOf[keyof ResultOf]> {
  try {
    return await route(request, ctx);
  } catch (e) {
    throw withFileNamed(e, request);
  }
}

function route(request: EngineRequest, ctx: HandlerContext): Promise<ResultOf[keyof ResultOf]> {
  switch (request.kind) {
    case 'align':
      return alignHandler(request, ctx);
    case 'merge':
      return mergeHandler(request, ctx);
    case 'tensorStats':
      return tensorStatsHandler(request, ctx);
    case 'backend':
      return backendHandler(request);
    case 'barrier':
      // Sent straight to a worker, the barrier job runs its plan on this one worker; the client
      // runs the same job over its whole pool.
      return runBarrierJob(request, thisWorker(ctx), { signal: ctx.signal, onProgress: ctx.onProgress });
    case 'evaluatePath':
      return evaluatePathHandler(request, ctx);
    case 'equivalence':
      return equivalenceHandler(request, ctx);
    case 'diff':
      return diffHandler(request, ctx);
    case 'diffTensor':
      return diffTensorHandler(request, ctx);
    case 'scan':
      return scanHandler(request, ctx);
    case 'train':
      return trainHandler(request, ctx);
  }
}

/** This thread as a pool of one worker for a job: its requests run through `dispatch` here. */
function thisWorker(ctx: HandlerContext): JobWorkers {
  return {
    size: 1,
    warmUp: () => undefined,
    backend: () => Promise.resolve(currentBackend()),
    run: <K extends EngineRequest['kind']>(request: Extract<EngineRequest, { kind: K }>, opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void }) =>
      dispatch(request, { signal: opts.signal ?? ctx.signal, onProgress: opts.onProgress ?? (() => undefined), log: ctx.log }) as Promise<ResultOf[K]>,
  };
}
