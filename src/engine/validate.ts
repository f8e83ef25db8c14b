/**
 * Runtime validation of every message crossing the worker boundary, in both directions, with the
 * schemas in `schemas/` (requests, results, envelopes). A malformed message is rejected with one
 * line naming the field and the rule ("invalid align request: field `seed` must be an integer in
 * [0, 4294967295]") instead of failing later somewhere deep. Valid messages are returned as they
 * came (same object, typed arrays untouched, unknown extra fields kept: additive protocol
 * changes stay compatible).
 */
import type * as v from 'valibot';
import type { Progress } from '../core/checkpoint';
import { firstIssue, isRule, issueSegments, obj, oneOf, type Schema } from '../../shared/schema/rules';
import { EngineError } from './errors';
import type { BackendChoice, EngineRequest, FromWorker, ResultOf, ToWorker } from './protocol';
import { FROM_WORKER_SCHEMAS, FROM_WORKER_TYPES, TO_WORKER_SCHEMAS, TO_WORKER_TYPES, progressSchema } from './schemas/messages';
import { BACKEND_CHOICES, REQUEST_KINDS, REQUEST_SCHEMAS } from './schemas/requests';
import { RESULT_SCHEMAS } from './schemas/results';

export { BACKEND_NAMES, REQUEST_KINDS } from './schemas/requests';

/** "invalid align request field `data`: field `limit` must be an integer >= 1". */
export function issueText(where: string, issue: v.BaseIssue<unknown>): string {
  const segments = issueSegments(issue);
  const last = segments.pop();
  if (last === undefined) return `invalid ${where}: ${issue.message}`;
  const at = where + segments.map((s) => ` field \`${s}\``).join('');
  return isRule(issue.message) ? `invalid ${at}: field \`${last}\` ${issue.message}` : `invalid ${at} field \`${last}\`: ${issue.message}`;
}

function check<T>(schema: Schema<T>, x: unknown, where: string): T {
  const r = firstIssue(schema, x);
  if (!r.ok) throw new EngineError('InvalidMessage', issueText(where, r.issue));
  return r.value;
}

const requestKind = obj({ kind: oneOf(REQUEST_KINDS) });
const toWorkerType = obj({ type: oneOf(TO_WORKER_TYPES) });
const fromWorkerType = obj({ type: oneOf(FROM_WORKER_TYPES) });

/** Validates one request (also used by the CLI and the client to check a request before sending). */
export function validateRequest(x: unknown): EngineRequest {
  const { kind } = check(requestKind, x, 'request');
  check<unknown>(REQUEST_SCHEMAS[kind], x, `${kind} request`);
  return x as EngineRequest;
}

/** Validates a message the worker receives. */
export function validateToWorker(x: unknown): ToWorker {
  const { type } = check(toWorkerType, x, 'message to worker');
  check<unknown>(TO_WORKER_SCHEMAS[type], x, `${type} message`);
  if (type === 'request') validateRequest((x as { request: unknown }).request);
  return x as ToWorker;
}

export function validateProgress(x: unknown): Progress {
  check(progressSchema, x, 'progress');
  return x as Progress;
}

/**
 * Validates a message the caller receives. Results are checked for being an object here and
 * in full by `validateResult`, once the caller has matched the id to its request kind.
 */
export function validateFromWorker(x: unknown): FromWorker {
  const { type } = check(fromWorkerType, x, 'message from worker');
  check<unknown>(FROM_WORKER_SCHEMAS[type], x, `${type} message`);
  return x as FromWorker;
}

/** Validates a result against the kind of the request it answers. */
export function validateResult<K extends EngineRequest['kind']>(kind: K, x: unknown): ResultOf[K] {
  check<unknown>(RESULT_SCHEMAS[kind], x, `${kind} result`);
  return x as ResultOf[K];
}

export function validateBackendChoice(x: unknown): BackendChoice {
  const found = BACKEND_CHOICES.find((c) => c === x);
  if (found === undefined) throw new EngineError('InvalidRequest', `unknown backend \`${String(x)}\`: use one of ${BACKEND_CHOICES.join(', ')}`);
  return found;
}
