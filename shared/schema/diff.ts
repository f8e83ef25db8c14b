/**
 * Results of the `diff` and `scan` requests (`rebasin diff` / `rebasin scan --json`, the diff
 * view): their field names are the CLI's JSON contract (docs/cli.md), added to, never renamed.
 * Figures are float64; a figure that does not exist (cosine of a zero tensor) is null.
 */
import * as v from 'valibot';
import { bool, int, nonEmpty, num, obj, oneOf, permRecord, str } from './rules';
import { SCAN_FLAG_NAMES } from './scanFlags';
import { tensorMomentEntries } from './results';

const maybeNum = () => v.nullable(num());
const shape = () => v.array(int(0), 'must be an array of dimensions');

/** ||A−B||, ||A−B|| / ||A||, cosine(A, B), max |A−B| and the pairs left out (NaN/Inf in A or B). */
const figureEntries = {
  l2: num(),
  relative: maybeNum(),
  cosine: maybeNum(),
  maxAbs: num(),
  nonFinite: int(0),
};

export const tensorDiffSchema = obj({ name: nonEmpty(), shape: shape(), dtype: nonEmpty(), dtypeB: v.optional(nonEmpty()), ...figureEntries });
export const groupDiffSchema = obj({ name: nonEmpty(), tensors: int(0), ...figureEntries });

const figureSetEntries = {
  tensors: v.array(tensorDiffSchema, 'must be an array of tensors'),
  layers: v.array(groupDiffSchema, 'must be an array of layers'),
  totals: groupDiffSchema,
};

const skippedSchema = v.array(obj({ name: nonEmpty(), reason: str() }), 'must be an array of skipped tensors');

export const diffResultSchema = obj({
  a: nonEmpty(),
  b: nonEmpty(),
  seconds: num(),
  ...figureSetEntries,
  mismatches: v.array(
    obj({ name: nonEmpty(), shapeA: shape(), shapeB: shape(), dtypeA: nonEmpty(), dtypeB: nonEmpty(), compared: bool() }),
    'must be an array of mismatches',
  ),
  onlyInA: v.array(str(), 'must be an array of names'),
  onlyInB: v.array(str(), 'must be an array of names'),
  skipped: skippedSchema,
  /** A against π(B): B aligned onto A by `method` (same figures), and what each permutation moved. */
  aligned: v.optional(
    obj({
      ...figureSetEntries,
      method: nonEmpty(),
      family: v.optional(str()),
      permutations: v.array(obj({ name: nonEmpty(), size: int(0), moved: int(0) }), 'must be an array of permutations'),
      /** The permutations themselves (gather indices), only when the request asked (`keepPerms`): the diff view's tensor pictures use them. */
      perms: v.optional(permRecord()),
    }),
  ),
});
export type DiffResult = v.InferOutput<typeof diffResultSchema>;

export const tensorScanSchema = obj({
  name: nonEmpty(),
  dtype: nonEmpty(),
  shape: shape(),
  ...tensorMomentEntries,
  zeroCount: int(0),
  flags: v.array(oneOf(SCAN_FLAG_NAMES), 'must be an array of flags'),
});

export const scanResultSchema = obj({
  path: nonEmpty(),
  seconds: num(),
  tensors: v.array(tensorScanSchema, 'must be an array of tensors'),
  dtypes: v.array(obj({ dtype: nonEmpty(), tensors: int(0), params: int(0), bytes: int(0) }), 'must be an array of dtype totals'),
  medianStd: num(),
  flagged: int(0),
  skipped: skippedSchema,
  /** The `extreme` rule's thresholds: max |x| above `extremeAbs`, or std above `extremeStdRatio` × medianStd. */
  rule: obj({ extremeAbs: num(), extremeStdRatio: num() }),
});
export type ScanResult = v.InferOutput<typeof scanResultSchema>;

const histogramSchema = v.pipe(
  obj({ edges: v.array(num(), 'must be an array of numbers'), counts: v.array(int(0), 'must be an array of counts') }),
  v.check((h) => h.edges.length === h.counts.length + 1, 'must have one more edge than counts'),
);

/** One tensor of a diff drawn (`diffTensor` request): both histograms over one range, |A−B| by block max. */
export const tensorPictureSchema = obj({
  tensor: nonEmpty(),
  shape: shape(),
  histogramA: histogramSchema,
  histogramB: histogramSchema,
  heatmap: v.pipe(
    obj({ rows: int(1), cols: int(1), blockRows: int(1), blockCols: int(1), values: v.array(v.nullable(num()), 'must be an array of numbers') }),
    v.check((m) => m.values.length === m.rows * m.cols, 'must have rows × cols values'),
  ),
});
export type TensorPictureResult = v.InferOutput<typeof tensorPictureSchema>;
