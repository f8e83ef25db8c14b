/**
 * The wire contract between callers (extension host, CLI, demo) and the compute worker.
 * Every request is answered by exactly one `result` or `error` message, after any number
 * of `progress` messages; `cancel` asks the worker to stop a request, which then ends with
 * an `error` of kind "Cancelled". Field names here are also the CLI's JSON contract.
 *
 * The types come from the schemas the messages are validated with (`schemas/requests.ts`,
 * `schemas/results.ts`, `schemas/messages.ts`, and `shared/schema/results.ts` for the shapes the
 * webviews check too): a new field is added to its schema there, and its type follows. Types
 * only (erased at run time): safe to `import type` from the extension host and the webviews.
 */
import type * as v from 'valibot';
import type { Progress } from '../core/checkpoint';
import type { DeepReadonly } from '../../shared/schema/rules';
import type * as req from './schemas/requests';
import type * as res from './schemas/results';
import type * as msg from './schemas/messages';

export type { BarrierCurve, GroupSummary, PathMetrics, TensorStatsResult } from '../../shared/schema/results';
export type { DiffResult, ScanResult, TensorPictureResult } from '../../shared/schema/diff';

export type BackendName = (typeof req.BACKEND_NAMES)[number];
export type BackendChoice = (typeof req.BACKEND_CHOICES)[number];
export type AlignMethod = v.InferOutput<typeof req.alignRequestSchema>['method'];
export type Split = (typeof req.SPLITS)[number];

// ---------------------------------------------------------------- requests (docs: schemas/requests.ts)

type Request<S extends v.GenericSchema> = DeepReadonly<v.InferOutput<S>>;
export type DataOptions = Request<typeof req.dataOptionsSchema>;

/** Maps each request kind to its request type, from the one list of schemas (`REQUEST_SCHEMAS`). */
export type RequestOf = { [K in keyof typeof req.REQUEST_SCHEMAS]: Request<(typeof req.REQUEST_SCHEMAS)[K]> };
/** Any request a worker accepts: a new kind joins by its line in `REQUEST_SCHEMAS`. */
export type EngineRequest = RequestOf[keyof RequestOf];

export type AlignRequest = RequestOf['align'];
export type MergeRequest = RequestOf['merge'];
export type BarrierRequest = RequestOf['barrier'];
export type EvaluatePathRequest = RequestOf['evaluatePath'];
export type EquivalenceRequest = RequestOf['equivalence'];
export type TensorStatsRequest = RequestOf['tensorStats'];
export type TrainRequest = RequestOf['train'];
export type DiffRequest = RequestOf['diff'];
export type ScanRequest = RequestOf['scan'];
export type DiffTensorRequest = RequestOf['diffTensor'];
export type BackendRequest = RequestOf['backend'];
export type { SteOptions } from './schemas/requests';
/** The request fields of the methods' own options (`ste`), each method's declared in src/core/methods. */
export type MethodOptionFields = Pick<AlignRequest, keyof typeof req.methodOptions>;

// ---------------------------------------------------------------- results (docs: schemas/results.ts)

export type GroupMatrices = v.InferOutput<typeof res.groupMatricesSchema>;
export type EquivalenceReport = v.InferOutput<typeof res.equivalenceReportSchema>;
export type AlignResult = v.InferOutput<typeof res.alignResultSchema>;
export type MergeResult = v.InferOutput<typeof res.mergeResultSchema>;
export type AlignedSource = v.InferOutput<typeof res.alignedSourceSchema>;
export type EvaluationPlan = v.InferOutput<typeof res.evaluationPlanSchema>;
export type LmEvaluationInfo = v.InferOutput<typeof res.lmEvaluationInfoSchema>;
export type BarrierResult = v.InferOutput<typeof res.barrierResultSchema>;
export type EvaluatePathResult = v.InferOutput<typeof res.evaluatePathResultSchema>;
export type EquivalenceResult = v.InferOutput<typeof res.equivalenceResultSchema>;
export type TrainResult = v.InferOutput<typeof res.trainResultSchema>;
export type BackendResult = v.InferOutput<typeof res.backendResultSchema>;

/** Maps each request kind to its result type. */
export type ResultOf = { [K in keyof typeof res.RESULT_SCHEMAS]: v.InferOutput<(typeof res.RESULT_SCHEMAS)[K]> };

// ---------------------------------------------------------------- messages

export type SerializedError = v.InferOutput<typeof msg.serializedErrorSchema>;

export type ToWorker =
  | { readonly type: 'request'; readonly id: number; readonly request: EngineRequest }
  | { readonly type: 'cancel'; readonly id: number };

export type FromWorker =
  | { readonly type: 'ready'; readonly backend: BackendName }
  | { readonly type: 'progress'; readonly id: number; readonly progress: Progress }
  | { readonly type: 'result'; readonly id: number; readonly result: ResultOf[keyof ResultOf] }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError };
