/**
 * Schemas of the results a worker sends back, one per request kind; their types
 * (src/engine/protocol.ts) come from here. Field names are also the CLI's `--json` contract:
 * add fields, never rename. A new result field goes into its result's entries below.
 */
import * as v from 'valibot';
import { METHOD_IDS } from '../../core/methods';
import { SYMMETRY_IDS } from '../../core/symmetry/settings';
import { bool, int, nonEmpty, num, numArray, obj, oneOf, permRecord, str, strArray } from '../../../shared/schema/rules';
import { diffResultSchema, scanResultSchema, tensorPictureSchema } from '../../../shared/schema/diff';
import { attentionLayersSchema } from '../../../shared/schema/attention';
import { barrierCurveSchema, curveEntries, curveLengths, groupSummarySchema, tensorStatsResultSchema } from '../../../shared/schema/results';
import { BACKEND_NAMES } from './requests';

const backend = oneOf(BACKEND_NAMES);
const float32 = () => v.custom<Float32Array>((x) => x instanceof Float32Array, 'must be a Float32Array');
const method = oneOf(METHOD_IDS);

/**
 * Similarity of A's units (rows) against B's units (columns), before and after alignment:
 * `size × size` row-major; or, for a per-block permutation (`blocks`: attention heads' inner
 * dims), only the diagonal blocks, `blocks` matrices of m × m (m = size / blocks) end to end,
 * block g pairing A's head g with B's head π_outer(g) (before: dims unpermuted).
 */
export const groupMatricesSchema = v.pipe(
  obj({
    name: nonEmpty(),
    size: int(0),
    blocks: v.optional(int(2)),
    before: float32(),
    after: float32(),
  }),
  v.check((m) => m.blocks === undefined || m.size % m.blocks === 0, (issue) => `matrix \`${issue.input.name}\`: size ${issue.input.size} is not a multiple of blocks ${issue.input.blocks ?? 1}`),
  v.check(
    (m) => m.before.length === matrixValues(m.size, m.blocks) && m.after.length === matrixValues(m.size, m.blocks),
    (issue) => issue.input.blocks === undefined
      ? `matrix \`${issue.input.name}\` fields \`before\` and \`after\` must be a Float32Array of ${issue.input.size}x${issue.input.size}`
      : `matrix \`${issue.input.name}\` fields \`before\` and \`after\` must be a Float32Array of ${issue.input.blocks} blocks of ${issue.input.size / issue.input.blocks}x${issue.input.size / issue.input.blocks}`,
  ),
);

/** Values of a similarity matrix of side `size`, whole or as `blocks` diagonal blocks. */
export function matrixValues(size: number, blocks?: number): number {
  const b = blocks ?? 1;
  return b * (size / b) ** 2;
}

export const equivalenceReportSchema = obj({
  /** Largest |logit(B) - logit(pi(B))| on the batch. */
  maxAbsDiff: num(),
  /** maxAbsDiff divided by the largest |logit(B)|. */
  relDiff: num(),
  ok: bool(),
  batch: oneOf(['data', 'random'] as const),
  message: v.optional(str()),
});

/**
 * One orthogonal map: its side, the mean over rows of the largest |R_ij| (1 for a permutation,
 * about sqrt(2 / (pi size)) for a random rotation), and the Procrustes objective trace(R^T M)
 * for the identity and for R (M the cross-correlation of B's and A' features).
 */
const orthogonalMapSchema = v.pipe(
  obj({
    size: int(1),
    rowMaxMean: num(),
    objectiveBefore: num(),
    objectiveAfter: num(),
    /**
     * With `includeMatrices` (the extension's panel; never in the CLI's JSON): |R| reduced by block
     * max (src/core/symmetry/mapPictures.ts): side x side cells, each the largest |R_ij| of a block x block block.
     */
    picture: v.optional(v.pipe(
      obj({ side: int(1), block: int(1), values: float32() }),
      v.check((p) => p.values.length === p.side * p.side, (issue) => `picture: ${issue.input.values.length} values, expected side² = ${issue.input.side ** 2}`),
    )),
  }),
  v.check((m) => m.picture === undefined || m.picture.side === Math.ceil(m.size / m.picture.block), (issue) => `picture: side ${issue.input.picture?.side} does not match size ${issue.input.size} in blocks of ${issue.input.picture?.block}`),
);
const orthogonalMapsSchema = obj({
  residual: orthogonalMapSchema,
  /** [layer][key/value head]: the query/key maps (rotary: 2 x 2 rotations per frequency pair). */
  qk: v.array(v.array(orthogonalMapSchema, 'must be an array'), 'must be an array'),
  /** [layer][key/value head]: the value/output maps. */
  vo: v.array(v.array(orthogonalMapSchema, 'must be an array'), 'must be an array'),
  /** Whether A's and B's tied heads became untied `lm_head.weight` (config.json: tie_word_embeddings false). */
  untiedHead: bool(),
  /** A' against A (the reference's own equivalence check). */
  referenceEquivalence: equivalenceReportSchema,
});

const alignEntries = {
  method,
  seconds: num(),
  iterations: int(0),
  /** Sum over the spec tensors a permutation acts on of <A, pi(B)>, before (identity) and after. */
  objectiveBefore: num(),
  objectiveAfter: num(),
  /** Sum of <A, B> over the spec tensors no permutation touches (unchanged by alignment). */
  objectiveFixed: v.optional(num()),
  perms: permRecord(),
  /** The file written (absent when nothing was written). */
  out: v.optional(nonEmpty()),
  /** When the request gave `out`: whether it was written (false after a failed equivalence check without keepOnMismatch). */
  written: v.optional(bool()),
  backend,
  family: v.optional(nonEmpty()),
  groups: v.array(groupSummarySchema, 'must be an array'),
  equivalence: v.optional(equivalenceReportSchema),
  /** Sizes a config.json beside A or B left out, taken from transformers' class defaults: one line per file. */
  configDefaults: v.optional(strArray()),
  /** Weight-space distances over spec tensors: ||A - B|| (naive) and ||A - pi(B)|| (aligned). */
  distance: v.optional(obj({ naive: num(), aligned: num() })),
  /** The symmetry searched (absent: permutation). */
  symmetry: v.optional(oneOf(SYMMETRY_IDS)),
  /** `orthogonal`: where A' (A with folded norms, the reference B' is aligned to) was written. */
  referenceFolded: v.optional(nonEmpty()),
  /** `orthogonal`: the fitted maps, and how far each is from a permutation. */
  orthogonal: v.optional(orthogonalMapsSchema),
};

export const alignResultSchema = obj({
  ...alignEntries,
  matrices: v.optional(v.array(groupMatricesSchema, 'must be an array')),
  /** With `matrices`: the spec's attention layers, so the panel shows head groups per layer. */
  attention: attentionLayersSchema,
});

const widenedSchema = obj({ tensor: str(), from: str(), to: str() });

export const mergeResultSchema = obj({
  out: nonEmpty(),
  inputs: strArray(),
  lambda: num(),
  aligned: bool(),
  /** "weight" (two inputs aligned), "mergemany" (3+ aligned), "none" (no alignment). */
  method: oneOf(['weight', 'mergemany', 'none'] as const),
  seconds: num(),
  backend,
  /** Float tensors written in another dtype than the reference's (inputs of mixed dtypes: the wider one; or not encodable: F32). */
  widened: v.optional(v.array(widenedSchema, 'must be an array')),
  /** `orthogonal`: B' came from align --symmetry orthogonal and was merged, as is, with A' (`referenceFolded`) instead of A. */
  symmetry: v.optional(oneOf(SYMMETRY_IDS)),
  referenceFolded: v.optional(nonEmpty()),
  /**
   * merge --repair: the REPAIR sites folded into the written weights (hidden layers of an MLP, MLP
   * units of each transformer block or expert), the data and the examples (sequences for a language
   * model) their statistics were measured on, and the check that the written file computes the
   * repaired model barrier --repair evaluates at this lambda.
   */
  repair: v.optional(obj({
    sites: int(0),
    data: nonEmpty(),
    split: oneOf(['train', 'test'] as const),
    examples: int(0),
    check: equivalenceReportSchema,
  })),
});

/**
 * Where the aligned path's far end comes from: `alignment` (B aligned by this barrier run),
 * `permutations` (an alignment's permutations passed in the request), `checkpoint` (an aligned
 * file evaluated as is). `method` is the alignment's method ("unknown" for a file whose
 * metadata does not say).
 */
export const alignedSourceSchema = obj({
  method: oneOf([...METHOD_IDS, 'unknown'] as const),
  source: oneOf(['alignment', 'permutations', 'checkpoint'] as const),
  /** The aligned checkpoint (source "checkpoint"). */
  checkpoint: v.optional(nonEmpty()),
  /** The symmetry of the alignment (absent: permutation). */
  symmetry: v.optional(oneOf(SYMMETRY_IDS)),
  /** `orthogonal`: the aligned path starts at A' (A with folded norms, written beside the aligned checkpoint), not at A. */
  referenceFolded: v.optional(nonEmpty()),
});

const split = oneOf(['train', 'test'] as const);

/** Batch sizes the memory plan chose, and the data BatchNorm statistics were recomputed on. */
export const evaluationPlanSchema = obj({
  /** Examples per evaluation batch. */
  batchSize: int(0),
  /** Planned bytes of activations per example (forward pass, measured on a probe batch). */
  activationBytesPerExample: num(),
  /** Present when BatchNorm statistics were recomputed at each lambda. */
  batchNormReset: v.optional(obj({ split, examples: int(0), batchSize: int(0) })),
  /** Present with REPAIR: the examples the unit statistics were measured on. */
  repair: v.optional(obj({ split, examples: int(0) })),
  /** The data the losses are over: the file(s) read, the split and the number of examples. */
  data: v.optional(obj({ source: str(), split, examples: int(0) })),
});

/** A language-model curve's evaluation: the objective, how many positions were scored, the model and data read. */
export const lmEvaluationInfoSchema = obj({
  objective: oneOf(['causal', 'masked'] as const),
  sequences: int(0),
  seqLen: int(0),
  /** Scored positions (next-token positions, or masked positions for BERT). */
  positions: int(0),
  /** The forward pass (family, sizes), one line. */
  model: nonEmpty(),
  /** The token data read, one line. */
  data: nonEmpty(),
  /** Sizes config.json left out, taken from transformers' class defaults: one line per file. */
  configDefaults: v.optional(strArray()),
});

const barrierResultObject = obj({
  ...curveEntries,
  backend,
  seconds: num(),
  workers: int(1),
  /** Present when split was "both": one curve per split (the top-level fields then hold "test"). */
  splits: v.optional(obj({ test: v.optional(barrierCurveSchema), train: v.optional(barrierCurveSchema) })),
  align: v.optional(obj(alignEntries)),
  /** Which alignment the aligned curve belongs to (present with an aligned curve). */
  alignedFrom: v.optional(alignedSourceSchema),
  /** The evaluation plan of the workers (batch sizes under the memory budget). */
  evaluation: v.optional(evaluationPlanSchema),
  /** Language models: the objective and data the losses are over (the curves also carry `perplexity`). */
  lm: v.optional(lmEvaluationInfoSchema),
});
export const barrierResultSchema = v.pipe(barrierResultObject, curveLengths<v.InferOutput<typeof barrierResultObject>>());

/** One pool worker's share of a curve. One rule: one `loss`, `acc` (and `perplexity`) per λ. */
export const evaluatePathResultSchema = v.pipe(
  obj({
    lambdas: numArray(),
    loss: numArray(),
    acc: numArray(),
    /** Language models: exp(loss) at each lambda. */
    perplexity: v.optional(numArray()),
    plan: v.optional(evaluationPlanSchema),
    /** Language models: what was evaluated. */
    lm: v.optional(lmEvaluationInfoSchema),
  }),
  v.check(
    (r) => r.loss.length === r.lambdas.length && r.acc.length === r.lambdas.length && (r.perplexity === undefined || r.perplexity.length === r.lambdas.length),
    `fields \`lambdas\`, \`loss\`, \`acc\` (and \`perplexity\`) must have the same length`,
  ),
);

/** The equivalence check's report, or why it could not run (no forward pass, over the memory budget). */
export const equivalenceResultSchema = obj({
  equivalence: v.optional(equivalenceReportSchema),
  skipped: v.optional(str()),
});

export const trainResultSchema = obj({
  out: nonEmpty(),
  seconds: num(),
  finalLoss: num(),
  testLoss: v.optional(num()),
  testAcc: v.optional(num()),
  backend,
});

export const backendResultSchema = obj({ backend });

/** Each request kind's result schema (the keys are REQUEST_SCHEMAS' keys). */
export const RESULT_SCHEMAS = {
  align: alignResultSchema,
  merge: mergeResultSchema,
  barrier: barrierResultSchema,
  evaluatePath: evaluatePathResultSchema,
  equivalence: equivalenceResultSchema,
  tensorStats: tensorStatsResultSchema,
  diff: diffResultSchema,
  diffTensor: tensorPictureSchema,
  scan: scanResultSchema,
  train: trainResultSchema,
  backend: backendResultSchema,
} as const;

