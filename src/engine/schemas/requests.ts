/**
 * Schemas of the requests a worker accepts; their types (src/engine/protocol.ts) come from here.
 * Field names are also the CLI's JSON contract: add fields, never rename. A new request field
 * goes into its request's entries below (optional unless every caller sends it).
 */
import * as v from 'valibot';
import { MAX_ITER, METHOD_IDS, METHODS, optionAccepts, optionRule, SEED, type NumberOption } from '../../core/methods';
import { MAX_STEPS } from '../../core/barrier';
import { SYMMETRY_IDS } from '../../core/symmetry/settings';
import { bool, finite, int, nonEmpty, numArray, obj, oneOf, permRecord, positive, type Schema } from '../../../shared/schema/rules';

export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;
export const SPLITS = ['test', 'train', 'both'] as const;

/** A numeric option by its rule in src/core/methods (the rule the CLI and the settings apply too). */
function option(o: NumberOption): Schema<number> {
  return v.custom<number>((x) => optionAccepts(o, x), `must be ${optionRule(o)}`);
}

const seedAndIter = { seed: option(SEED), maxIter: option(MAX_ITER) };
const method = oneOf(METHOD_IDS);
/** `--symmetry` (src/core/symmetry/settings.ts); absent: permutation. */
const symmetry = v.optional(oneOf(SYMMETRY_IDS));
const optStr = () => v.optional(nonEmpty());
const optBool = () => v.optional(bool());
/** Bytes a request may use (src/core/memoryPlan.ts); default half of physical memory. */
const memoryBudget = v.optional(positive('must be a positive number of bytes'));

/** STE settings (paper §3.3, Algorithm 2); fields and rules from src/core/methods/ste.ts. */
export interface SteOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
}

/**
 * Each method's own options object (`ste`: epochs, batch size, learning rate), built from its
 * entry in src/core/methods: adding an option there adds it to validation here. The type is
 * declared (the registry's entries are not literal types): a new method with an options object
 * adds its field to the cast below and its interface beside `SteOptions`.
 */
export const methodOptions = Object.fromEntries(
  METHODS.filter((m) => m.optionsField !== undefined).map((m) => [
    m.optionsField as string,
    v.optional(obj(Object.fromEntries(m.options.map((o) => [o.field, option(o)])))),
  ]),
) as unknown as { ste: v.OptionalSchema<Schema<SteOptions>, undefined> };

/** Where evaluation/training data comes from (`--data`, `--split`, `--limit`). */
export const dataOptionsSchema = obj({
  /** Folder of MNIST-style IDX files, a safetensors file with x/y, or .npy/.npz. */
  path: nonEmpty(),
  split: v.optional(oneOf(SPLITS)),
  limit: v.optional(int(1)),
  /** Optional normalisation applied after scaling uint8 to [0, 1]. */
  mean: v.optional(finite()),
  std: v.optional(positive()),
  /**
   * Token data for a language model (a Hugging Face checkpoint): `tokenizer.json` for raw text
   * (default: the one beside checkpoint A), the window length for raw text (default: the model's
   * maximum position, at most 512), and the masked-LM mask's seed (BERT, default 0) and token id
   * (default: the tokenizer's [MASK] / <mask>). Image data ignores them.
   */
  tokenizer: optStr(),
  seqLen: v.optional(int(2)),
  maskSeed: v.optional(int(0)),
  maskId: v.optional(int(0)),
});

/** Align checkpoint B onto A and (when `out` is given) write pi(B). */
export const alignRequestSchema = obj({
  kind: v.literal('align'),
  a: nonEmpty(),
  b: nonEmpty(),
  out: optStr(),
  /** Path of a spec JSON ({"axes": ...}); inferred from names and shapes when absent. */
  spec: optStr(),
  method,
  symmetry,
  ...seedAndIter,
  /** Needed for activation matching and STE; used by the equivalence check when present. */
  data: v.optional(dataOptionsSchema),
  /** Model config JSON (`--model`); else `<checkpoint>.rebasin.json`, else inferred. */
  model: optStr(),
  ...methodOptions,
  /** Return per-group similarity matrices before/after (for heatmaps). */
  includeMatrices: optBool(),
  /** Accept NaN/Inf weights instead of refusing them. */
  allowNonFinite: optBool(),
  memoryBudget,
  /** Write `out` even when the equivalence check fails (default: nothing is written then). */
  keepOnMismatch: optBool(),
  /**
   * Weight matching reads A's and B's tensors from disk per product instead of holding them
   * (out of core), even when the pair fits the budget; it does so anyway when it does not fit.
   */
  outOfCore: optBool(),
});

/** Merge two or more checkpoints; inputs[0] is the reference all others are aligned to. */
export const mergeRequestSchema = obj({
  kind: v.literal('merge'),
  inputs: v.custom<string[]>(
    (x) => Array.isArray(x) && x.length >= 2 && x.every((p) => typeof p === 'string' && p.length > 0),
    'must list at least two paths',
  ),
  out: nonEmpty(),
  /** Weight of the non-reference side for two inputs: (1-lambda)*A + lambda*pi(B). Ignored (uniform mean) for 3+. */
  lambda: finite(),
  align: bool(),
  /**
   * `orthogonal`: the second input is B' written by align --symmetry orthogonal; it is merged with
   * the folded reference A' its metadata names (as is, without aligning again). Without the field
   * such a B' is recognised too.
   */
  symmetry,
  spec: optStr(),
  ...seedAndIter,
  allowNonFinite: optBool(),
  memoryBudget,
  /**
   * REPAIR (two inputs): the merged model's units renormalised towards the interpolation of A's and
   * pi(B)'s statistics on `data`, as barrier --repair does at this lambda; the correction is folded
   * into the written weights (handlers/mergeRepair.ts).
   */
  repair: optBool(),
  /** The data REPAIR measures on (required with `repair`). */
  data: v.optional(dataOptionsSchema),
  /** Model config JSON for a classifier (default: beside the reference), as barrier's. */
  model: optStr(),
});

/** Loss barrier along the linear path, naive and (when align) aligned. */
export const barrierRequestSchema = v.pipe(
  obj({
    kind: v.literal('barrier'),
    a: nonEmpty(),
    b: nonEmpty(),
    data: dataOptionsSchema,
    model: optStr(),
    spec: optStr(),
    steps: v.pipe(int(2), v.maxValue(MAX_STEPS, `must be at most ${MAX_STEPS}`)),
    align: bool(),
    ...seedAndIter,
    /** Recompute BatchNorm running statistics on training data at each lambda (paper appendix A.4). */
    resetBatchNorm: optBool(),
    /** REPAIR (Jordan et al. 2022) at each lambda: hidden units' statistics rescaled to the endpoints' interpolation (MLPs). */
    repair: optBool(),
    allowNonFinite: optBool(),
    /**
     * The alignment the aligned path belongs to. When aligning here (`align` true, no `perms`, no
     * `alignedCheckpoint`): the method to align with (default weight). With `perms`: the method
     * that found them (reported back; default weight).
     */
    method: v.optional(method),
    /** When aligning here: `orthogonal` aligns with align --symmetry orthogonal (A' and B' in a temporary folder) and the aligned path is A' to B'. */
    symmetry,
    /** STE settings when aligning here with method "ste". */
    ...methodOptions,
    /** Permutations of an alignment already made (gather indices per spec permutation): the aligned path is A to π(B). */
    perms: v.optional(permRecord()),
    /** An aligned checkpoint to evaluate as is (the aligned path is A to this file; nothing is aligned). */
    alignedCheckpoint: optStr(),
    /** Bytes the curve may use for activations, data and weights over all workers. */
    memoryBudget,
  }),
  v.check((r) => r.perms === undefined || r.alignedCheckpoint === undefined, 'give `perms` or `alignedCheckpoint`, not both'),
);

/** Loss and accuracy of (1-l)*A + l*pi(B) at given lambdas: one pool worker's share of a barrier curve. */
export const evaluatePathRequestSchema = obj({
  kind: v.literal('evaluatePath'),
  a: nonEmpty(),
  b: nonEmpty(),
  /** Permutations to apply to B first (gather indices), with the spec they belong to. */
  perms: v.optional(permRecord()),
  spec: optStr(),
  lambdas: v.pipe(v.array(finite(), 'must be an array of numbers'), v.minLength(1, 'must not be empty')),
  data: dataOptionsSchema,
  model: optStr(),
  resetBatchNorm: optBool(),
  /** REPAIR at each lambda (compute/repair.ts). */
  repair: optBool(),
  /** Bytes this request may use (batch sizes are planned under it). */
  memoryBudget,
});

/**
 * Does `other` compute B's function? B and `other` run side by side on a few examples of the data
 * (else seeded random inputs) and their outputs are compared: `barrier --aligned` checks a file
 * this way when no spec says how it should be B permuted.
 */
export const equivalenceRequestSchema = obj({
  kind: v.literal('equivalence'),
  b: nonEmpty(),
  other: nonEmpty(),
  /**
   * `orthogonal`: `other` is a reparameterisation of B (align --symmetry orthogonal: folded norms,
   * orthogonal maps, maybe an untied head), each run under its own config.json.
   */
  symmetry,
  data: v.optional(dataOptionsSchema),
  model: optStr(),
  seed: v.optional(option(SEED)),
  allowNonFinite: optBool(),
  memoryBudget,
});

/** Statistics and histogram of one tensor (inspector, on demand). */
export const tensorStatsRequestSchema = obj({
  kind: v.literal('tensorStats'),
  path: nonEmpty(),
  tensor: nonEmpty(),
  bins: v.pipe(int(1), v.maxValue(100_000, 'must be at most 100000')),
});

/**
 * Distance of B from A per tensor, layer and in total (`rebasin diff`); with `align`, B is first
 * aligned onto A by the align request's path (same options, nothing written) and A is also
 * compared with π(B).
 */
export const diffRequestSchema = obj({
  kind: v.literal('diff'),
  a: nonEmpty(),
  b: nonEmpty(),
  align: optBool(),
  method: v.optional(method),
  spec: optStr(),
  seed: v.optional(option(SEED)),
  maxIter: v.optional(option(MAX_ITER)),
  data: v.optional(dataOptionsSchema),
  model: optStr(),
  allowNonFinite: optBool(),
  memoryBudget,
  /** Return the alignment's permutations in `aligned.perms` (the diff view draws tensors with them). */
  keepPerms: optBool(),
});

/**
 * One tensor of a diff drawn (the diff view, on demand): histograms of A and B (or π(B), given
 * `perms` and the spec they belong to) and |A−B| reduced to at most `maxSide` cells a side.
 */
export const diffTensorRequestSchema = obj({
  kind: v.literal('diffTensor'),
  a: nonEmpty(),
  b: nonEmpty(),
  tensor: nonEmpty(),
  perms: v.optional(permRecord()),
  spec: optStr(),
  model: optStr(),
  bins: v.optional(v.pipe(int(1), v.maxValue(4096, 'must be at most 4096'))),
  maxSide: v.optional(v.pipe(int(1), v.maxValue(1024, 'must be at most 1024'))),
});

/** Every tensor's statistics and health flags (`rebasin scan`, "Scan for problems"). */
export const scanRequestSchema = obj({
  kind: v.literal('scan'),
  path: nonEmpty(),
});

/** Train an MLP on a data set and save it as safetensors (demo, tests). */
export const trainRequestSchema = obj({
  kind: v.literal('train'),
  data: dataOptionsSchema,
  /** Layer widths including input and output, e.g. [784, 512, 512, 512, 10]. */
  widths: v.pipe(
    numArray(),
    v.check((w) => w.length >= 2 && w.every((x) => Number.isSafeInteger(x) && x >= 1), 'must list at least two positive widths'),
  ),
  epochs: int(1),
  batchSize: int(1),
  learningRate: positive(),
  seed: int(0),
  out: nonEmpty(),
});

/** Report which backend the worker runs on. */
export const backendRequestSchema = obj({ kind: v.literal('backend') });

/** Every request kind and its schema: the one list the worker, the client and the CLI validate with. */
export const REQUEST_SCHEMAS = {
  align: alignRequestSchema,
  merge: mergeRequestSchema,
  barrier: barrierRequestSchema,
  evaluatePath: evaluatePathRequestSchema,
  equivalence: equivalenceRequestSchema,
  tensorStats: tensorStatsRequestSchema,
  diff: diffRequestSchema,
  diffTensor: diffTensorRequestSchema,
  scan: scanRequestSchema,
  train: trainRequestSchema,
  backend: backendRequestSchema,
} as const;

export type RequestKind = keyof typeof REQUEST_SCHEMAS;
export const REQUEST_KINDS = Object.keys(REQUEST_SCHEMAS) as RequestKind[];
