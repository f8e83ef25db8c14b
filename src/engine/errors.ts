/**
 * The engine's own error class, and the conversion of any error to and from the wire
 * (`SerializedError` in protocol.ts). Errors of other areas keep their identity on the wire
 * as "<ClassName>:<kind>" (e.g. "SafetensorsError:InvalidOffset") plus the file they name.
 */
import type { SerializedError } from './protocol';

export type EngineErrorKind =
  /** The request was cancelled (AbortSignal on the caller's side, `cancel` message in the worker). */
  | 'Cancelled'
  /** The worker exited, crashed or ran out of memory while the request was pending. */
  | 'WorkerDied'
  /** A message failed validation (malformed request, result or progress). */
  | 'InvalidMessage'
  /** An explicitly chosen tfjs backend cannot load here. */
  | 'BackendUnavailable'
  /** The request's arguments break a rule (output over an input, NaN weights, bad lambda...). */
  | 'InvalidRequest'
  /** A weight tensor holds NaN or Inf and the request did not allow non-finite weights. */
  | 'NonFinite'
  /** A plan does not fit the memory budget (src/core/memoryBudget.ts); the message says what needs how much. */
  | 'OverBudget'
  /** The request kind exists in the protocol but no handler can serve it in this build. */
  | 'Unsupported'
  /** The client was disposed while the request was pending. */
  | 'Disposed';

/** The one error class of the engine area. `kind` is also the wire kind for these errors. */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    readonly kind: EngineErrorKind | string,
    message: string,
    /** The file the error is about, when there is one. */
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Raised in handlers between steps when the request's signal has been aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EngineError('Cancelled', `${what} cancelled`);
}

function stringField(e: object, key: string): string | undefined {
  const v: unknown = (e as Record<string, unknown>)[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** The wire kind of an error: ours by kind, others' as "<name>:<kind>", plain errors by name. */
export function errorKind(e: unknown): string {
  if (e instanceof EngineError) return e.kind;
  if (typeof e !== 'object' || e === null) return 'Error';
  const name = stringField(e, 'name') ?? 'Error';
  if (name === 'AbortError') return 'Cancelled';
  const kind = stringField(e, 'kind');
  if (kind === 'Aborted' || kind === 'Cancelled') return 'Cancelled';
  return kind ? `${name}:${kind}` : name;
}

/** Converts anything thrown by a handler into the wire form (one-line message). */
export function serializeError(e: unknown): SerializedError {
  const message = e instanceof Error ? e.message : String(e);
  const out: { message: string; kind: string; file?: string; stack?: string } = {
    message: message.split('\n')[0] || 'unknown error',
    kind: errorKind(e),
  };
  if (typeof e === 'object' && e !== null) {
    const file = stringField(e, 'file');
    if (file) out.file = file;
  }
  if (e instanceof Error && e.stack) out.stack = e.stack;
  return out;
}

/** Rebuilds a throwable error on the caller's side; `kind` and `file` survive the trip. */
export function deserializeError(s: SerializedError): EngineError {
  const err = new EngineError(s.kind, s.message, s.file);
  if (s.stack) err.stack = `${s.kind}: ${s.message}\n    (worker) ${s.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/** True when the error (thrown or rejected) means the request was cancelled. */
export function isCancelled(e: unknown): boolean {
  return errorKind(e) === 'Cancelled';
}
