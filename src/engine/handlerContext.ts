/**
 * What every handler receives besides its request, in a home of its own: handlers and methods
 * import it without importing the dispatcher that imports them (dispatch.ts).
 */
import type { Progress } from '../core/checkpoint';
import type { EngineRequest, ResultOf } from './protocol';

/** What every handler receives besides its request. */
export interface HandlerContext {
  /** Aborted when the caller cancels; check it between steps (`throwIfCancelled`). */
  readonly signal: AbortSignal;
  /** Progress for the caller; call freely, rpc.ts throttles to about once per second plus milestones. */
  readonly onProgress: (p: Progress) => void;
  /** A line for the caller's log (output channel / --debug), not for the user's face. */
  readonly log: (line: string) => void;
}

export type Handler<K extends EngineRequest['kind']> = (
  request: Extract<EngineRequest, { kind: K }>,
  ctx: HandlerContext,
) => Promise<ResultOf[K]>;
