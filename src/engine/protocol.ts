/**
 * The wire contract between callers (extension host, CLI, demo) and the compute worker.
 * Every request is answered by exactly one `result` or `error` message, after any number
 * of `progress` messages; `cancel` asks the worker to stop a request, which then ends with
 * an `error` of kind "Cancelled". Field names here are also the CLI's JSON contract.
 */
import type { Progress } from '../core/checkpoint';
import type { AttentionLayer } from '../core/spec/attentionLayers';
export type { AttentionLayer, InnerPermutation } from '../core/spec/attentionLayers';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;
export type AlignMethod = 'weight' | 'activation' | 'ste';
export type Split = 'test' | 'train' | 'both';

/** Where evaluation/training data comes from (`--data`, `--split`, `--limit`). */
export interface DataOptions {
  /** Folder of MNIST-style IDX files, a safetensors file with x/y, or .npy/.npz. */
  readonly path: string;
  readonly split?: Split;
  readonly limit?: number;
  /** Optional normalisation applied after scaling uint8 to [0, 1]. */
  readonly mean?: number;
  readonly std?: number;
  /**
   * Token data for a language model (a Hugging Face checkpoint): `tokenizer.json` for raw text
   * (default: the one beside checkpoint A), the window length for raw text (default: the model's
   * maximum position, at most 512), and the masked-LM mask's seed (BERT, default 0) and token id
   * (default: the tokenizer's [MASK] / <mask>). Image data ignores them.
   */
  readonly tokenizer?: string;
  readonly seqLen?: number;
  readonly maskSeed?: number;
  readonly maskId?: number;
}

// ---------------------------------------------------------------- requests

/** Align checkpoint B onto A and (when `out` is given) write pi(B). */
export interface AlignRequest {
  readonly kind: 'align';
  readonly a: string;
  readonly b: string;
  readonly out?: string;
  /** Path of a spec JSON ({"axes": ...}); inferred from names and shapes when absent. */
  readonly spec?: string;
  readonly method: AlignMethod;
  readonly seed: number;
  readonly maxIter: number;
  /** Needed for activation matching and STE; used by the equivalence check when present. */
  readonly data?: DataOptions;
  /** Model config JSON (`--model`); else `<checkpoint>.rebasin.json`, else inferred. */
  readonly model?: string;
  readonly ste?: { readonly epochs: number; readonly batchSize: number; readonly learningRate: number };
  /** Return per-group similarity matrices before/after (for heatmaps). */
  readonly includeMatrices?: boolean;
  /** Accept NaN/Inf weights instead of refusing them. */
  readonly allowNonFinite?: boolean;
  /** Memory budget in bytes for weight matching (src/core/memoryPlan.ts); default half of physical memory. */
  readonly memoryBudget?: number;
  /** Write `out` even when the equivalence check fails (default: nothing is written then). */
  readonly keepOnMismatch?: boolean;
}

/** Merge two or more checkpoints; inputs[0] is the reference all others are aligned to. */
export interface MergeRequest {
  readonly kind: 'merge';
  readonly inputs: readonly string[];
  readonly out: string;
  /** Weight of the non-reference side for two inputs: (1-lambda)*A + lambda*pi(B). Ignored (uniform mean) for 3+. */
  readonly lambda: number;
  readonly align: boolean;
  readonly spec?: string;
  readonly seed: number;
  readonly maxIter: number;
  readonly allowNonFinite?: boolean;
  /** Memory budget in bytes for weight matching (src/core/memoryPlan.ts); default half of physical memory. */
  readonly memoryBudget?: number;
}

/** Loss barrier along the linear path, naive and (when align) aligned. */
export interface BarrierRequest {
  readonly kind: 'barrier';
  readonly a: string;
  readonly b: string;
  readonly data: DataOptions;
  readonly model?: string;
  readonly spec?: string;
  readonly steps: number;
  readonly align: boolean;
  readonly seed: number;
  readonly maxIter: number;
  /** Recompute BatchNorm running statistics on training data at each lambda (paper appendix A.4). */
  readonly resetBatchNorm?: boolean;
  /** REPAIR (Jordan et al. 2022) at each lambda: hidden units' statistics rescaled to the endpoints' interpolation (MLPs). */
  readonly repair?: boolean;
  readonly allowNonFinite?: boolean;
  /**
   * The alignment the aligned path belongs to. When aligning here (`align` true, no `perms`, no
   * `alignedCheckpoint`): the method to align with (default weight). With `perms`: the method
   * that found them (reported back; default weight).
   */
  readonly method?: AlignMethod;
  /** STE settings when aligning here with method "ste". */
  readonly ste?: AlignRequest['ste'];
  /** Permutations of an alignment already made (gather indices per spec permutation): the aligned path is A to π(B). */
  readonly perms?: Readonly<Record<string, readonly number[]>>;
  /** An aligned checkpoint to evaluate as is (the aligned path is A to this file; nothing is aligned). */
  readonly alignedCheckpoint?: string;
  /** Bytes the curve may use for activations, data and weights over all workers (default: half the physical memory). */
  readonly memoryBudget?: number;
}

/** Loss and accuracy of (1-l)*A + l*pi(B) at given lambdas: one pool worker's share of a barrier curve. */
export interface EvaluatePathRequest {
  readonly kind: 'evaluatePath';
  readonly a: string;
  readonly b: string;
  /** Permutations to apply to B first (gather indices), with the spec they belong to. */
  readonly perms?: Readonly<Record<string, readonly number[]>>;
  readonly spec?: string;
  readonly lambdas: readonly number[];
  readonly data: DataOptions;
  readonly model?: string;
  readonly resetBatchNorm?: boolean;
  /** REPAIR at each lambda (compute/repair.ts). */
  readonly repair?: boolean;
  /** Bytes this request may use (batch sizes are planned under it; default: half the physical memory). */
  readonly memoryBudget?: number;
}

/** Statistics and histogram of one tensor (inspector, on demand). */
export interface TensorStatsRequest {
  readonly kind: 'tensorStats';
  readonly path: string;
  readonly tensor: string;
  readonly bins: number;
}

/** Train an MLP on a data set and save it as safetensors (demo, tests). */
export interface TrainRequest {
  readonly kind: 'train';
  readonly data: DataOptions;
  /** Layer widths including input and output, e.g. [784, 512, 512, 512, 10]. */
  readonly widths: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly out: string;
}

/** Report which backend the worker runs on. */
export interface BackendRequest {
  readonly kind: 'backend';
}

export type EngineRequest =
  | AlignRequest
  | MergeRequest
  | BarrierRequest
  | EvaluatePathRequest
  | TensorStatsRequest
  | TrainRequest
  | BackendRequest;

// ---------------------------------------------------------------- results

export interface GroupSummary {
  readonly name: string;
  readonly size: number;
  /** Units whose index changed (perm[i] != i). */
  readonly moved: number;
  /** This group's share of the objective before and after. */
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
}

/** Similarity of A's units (rows) against B's units (columns), before and after alignment. */
export interface GroupMatrices {
  readonly name: string;
  readonly size: number;
  readonly before: Float32Array;
  readonly after: Float32Array;
}

export interface EquivalenceReport {
  /** Largest |logit(B) - logit(pi(B))| on the batch. */
  readonly maxAbsDiff: number;
  /** maxAbsDiff divided by the largest |logit(B)|. */
  readonly relDiff: number;
  readonly ok: boolean;
  readonly batch: 'data' | 'random';
  readonly message?: string;
}

export interface AlignResult {
  readonly method: AlignMethod;
  readonly seconds: number;
  readonly iterations: number;
  /** Sum over spec tensors of <A, pi(B)>, before (identity) and after. */
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
  readonly perms: Readonly<Record<string, number[]>>;
  /** The file written (absent when nothing was written). */
  readonly out?: string;
  /** When the request gave `out`: whether it was written (false after a failed equivalence check without keepOnMismatch). */
  readonly written?: boolean;
  readonly backend: BackendName;
  readonly family?: string;
  readonly groups: readonly GroupSummary[];
  readonly matrices?: readonly GroupMatrices[];
  /** With `matrices`: the spec's attention layers, so the panel shows head groups per layer. */
  readonly attention?: readonly AttentionLayer[];
  readonly equivalence?: EquivalenceReport;
  /** Weight-space distances over spec tensors: ||A - B|| (naive) and ||A - pi(B)|| (aligned). */
  readonly distance?: { readonly naive: number; readonly aligned: number };
}

export interface MergeResult {
  readonly out: string;
  readonly inputs: readonly string[];
  readonly lambda: number;
  readonly aligned: boolean;
  /** "weight" (two inputs aligned), "mergemany" (3+ aligned), "none" (no alignment). */
  readonly method: 'weight' | 'mergemany' | 'none';
  readonly seconds: number;
  readonly backend: BackendName;
  /** Float tensors written in another dtype than the reference's (inputs of mixed dtypes: the wider one; or not encodable: F32). */
  readonly widened?: readonly { readonly tensor: string; readonly from: string; readonly to: string }[];
}

export interface PathMetrics {
  readonly loss: number[];
  readonly acc: number[];
  /** Language models: exp(loss) at each lambda. */
  readonly perplexity?: number[];
}

export interface BarrierCurve {
  readonly lambdas: number[];
  readonly naive: PathMetrics;
  readonly aligned?: PathMetrics;
  readonly barrier: { readonly naive: number; readonly aligned?: number };
}

/**
 * Where the aligned path's far end comes from: `alignment` (B aligned by this barrier run),
 * `permutations` (an alignment's permutations passed in the request), `checkpoint` (an aligned
 * file evaluated as is). `method` is the alignment's method ("unknown" for a file whose
 * metadata does not say).
 */
export interface AlignedSource {
  readonly method: AlignMethod | 'unknown';
  readonly source: 'alignment' | 'permutations' | 'checkpoint';
  /** The aligned checkpoint (source "checkpoint"). */
  readonly checkpoint?: string;
}

/** Batch sizes the memory plan chose, and the data BatchNorm statistics were recomputed on. */
export interface EvaluationPlan {
  /** Examples per evaluation batch. */
  readonly batchSize: number;
  /** Planned bytes of activations per example (forward pass, measured on a probe batch). */
  readonly activationBytesPerExample: number;
  /** Present when BatchNorm statistics were recomputed at each lambda. */
  readonly batchNormReset?: { readonly split: 'train' | 'test'; readonly examples: number; readonly batchSize: number };
  /** Present with REPAIR: the examples the unit statistics were measured on. */
  readonly repair?: { readonly split: 'train' | 'test'; readonly examples: number };
}

export interface BarrierResult extends BarrierCurve {
  readonly backend: BackendName;
  readonly seconds: number;
  readonly workers: number;
  /** Present when split was "both": one curve per split (the top-level fields then hold "test"). */
  readonly splits?: Readonly<Partial<Record<'test' | 'train', BarrierCurve>>>;
  readonly align?: Omit<AlignResult, 'matrices'>;
  /** Which alignment the aligned curve belongs to (present with an aligned curve). */
  readonly alignedFrom?: AlignedSource;
  /** The evaluation plan of the workers (batch sizes under the memory budget). */
  readonly evaluation?: EvaluationPlan;
  /** Language models: the objective and data the losses are over (the curves also carry `perplexity`). */
  readonly lm?: LmEvaluationInfo;
}

export interface EvaluatePathResult {
  readonly lambdas: number[];
  readonly loss: number[];
  readonly acc: number[];
  /** Language models: exp(loss) at each lambda. */
  readonly perplexity?: number[];
  readonly plan?: EvaluationPlan;
  /** Language models: what was evaluated. */
  readonly lm?: LmEvaluationInfo;
}

/** A language-model curve's evaluation: the objective, how many positions were scored, the model and data read. */
export interface LmEvaluationInfo {
  readonly objective: 'causal' | 'masked';
  readonly sequences: number;
  readonly seqLen: number;
  /** Scored positions (next-token positions, or masked positions for BERT). */
  readonly positions: number;
  /** The forward pass (family, sizes), one line. */
  readonly model: string;
  /** The token data read, one line. */
  readonly data: string;
}

export interface TensorStatsResult {
  readonly tensor: string;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  readonly nanCount: number;
  readonly infCount: number;
  readonly histogram: { readonly edges: number[]; readonly counts: number[] };
}

export interface TrainResult {
  readonly out: string;
  readonly seconds: number;
  readonly finalLoss: number;
  readonly testLoss?: number;
  readonly testAcc?: number;
  readonly backend: BackendName;
}

export interface BackendResult {
  readonly backend: BackendName;
}

/** Maps each request kind to its result type. */
export interface ResultOf {
  align: AlignResult;
  merge: MergeResult;
  barrier: BarrierResult;
  evaluatePath: EvaluatePathResult;
  tensorStats: TensorStatsResult;
  train: TrainResult;
  backend: BackendResult;
}

// ---------------------------------------------------------------- messages

export interface SerializedError {
  readonly message: string;
  /** "Cancelled", "WorkerDied", "SafetensorsError:<kind>", "SpecError", "DataError", ... */
  readonly kind: string;
  readonly file?: string;
  readonly stack?: string;
}

export type ToWorker =
  | { readonly type: 'request'; readonly id: number; readonly request: EngineRequest }
  | { readonly type: 'cancel'; readonly id: number };

export type FromWorker =
  | { readonly type: 'ready'; readonly backend: BackendName }
  | { readonly type: 'progress'; readonly id: number; readonly progress: Progress }
  | { readonly type: 'result'; readonly id: number; readonly result: ResultOf[keyof ResultOf] }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError };
