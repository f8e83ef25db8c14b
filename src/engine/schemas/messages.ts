/**
 * Schemas of the envelopes crossing the worker boundary: progress, errors, and the messages to
 * and from a worker. A result's own shape is checked against its request kind
 * (RESULT_SCHEMAS) once the caller has matched the id to its request.
 */
import * as v from 'valibot';
import type { Progress } from '../../core/checkpoint';
import { finite, int, nonEmpty, num, obj, oneOf, str, type Schema } from '../../../shared/schema/rules';
import { BACKEND_NAMES } from './requests';

/** A loss-curve point just evaluated (core's `CurvePoint`). */
const curvePointSchema = obj({
  lambda: finite(),
  loss: num(),
  acc: num(),
  perplexity: v.optional(num()),
  path: v.optional(oneOf(['naive', 'aligned'] as const)),
  split: v.optional(oneOf(['test', 'train'] as const)),
});

/** Progress of a long computation (the type is core's `Progress`, which core code produces). */
export const progressSchema: Schema<Progress> = obj({
  stage: nonEmpty(),
  fraction: v.optional(finite()),
  message: v.optional(nonEmpty()),
  iteration: v.optional(int(0)),
  objective: v.optional(num()),
  point: v.optional(curvePointSchema),
});

export const serializedErrorSchema = obj({
  message: str(),
  /** "Cancelled", "WorkerDied", "SafetensorsError:<kind>", "SpecError", "DataError", ... */
  kind: nonEmpty(),
  file: v.optional(nonEmpty()),
  stack: v.optional(str()),
});

export const TO_WORKER_TYPES = ['request', 'cancel'] as const;
export const FROM_WORKER_TYPES = ['ready', 'progress', 'result', 'error'] as const;

/** The envelope of each message type; `request` and `result` payloads are checked by kind. */
export const TO_WORKER_SCHEMAS = {
  request: obj({ type: v.literal('request'), id: int(1), request: obj({}) }),
  cancel: obj({ type: v.literal('cancel'), id: int(1) }),
} as const;

export const FROM_WORKER_SCHEMAS = {
  ready: obj({ type: v.literal('ready'), backend: oneOf(BACKEND_NAMES) }),
  progress: obj({ type: v.literal('progress'), id: int(1), progress: progressSchema }),
  result: obj({ type: v.literal('result'), id: int(1), result: obj({}) }),
  // id 0 is the worker's own start-up failure (no request pending yet).
  error: obj({ type: v.literal('error'), id: int(0), error: serializedErrorSchema }),
} as const;
