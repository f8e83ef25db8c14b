/**
 * Result shapes that both the engine (worker results) and the webviews (panel, side view,
 * inspector) check: a permutation group's summary, a loss-barrier curve, a tensor's statistics.
 * One rule each, wherever the shape arrives.
 */
import * as v from 'valibot';
import { int, nonEmpty, num, numArray, obj } from './rules';

export const groupSummarySchema = obj({
  name: nonEmpty(),
  size: int(0),
  /** Units whose index changed (perm[i] != i). */
  moved: int(0),
  /** This group's share of the objective before and after. */
  objectiveBefore: num(),
  objectiveAfter: num(),
});
export type GroupSummary = v.InferOutput<typeof groupSummarySchema>;

export const pathMetricsSchema = obj({
  loss: numArray(),
  acc: numArray(),
  /** Language models: exp(loss) at each lambda. */
  perplexity: v.optional(numArray()),
});
export type PathMetrics = v.InferOutput<typeof pathMetricsSchema>;

/** Names the first series of `m` (at `path`) without one value per λ. */
function seriesLengthProblem(m: PathMetrics | undefined, path: string, n: number): string | undefined {
  if (!m) return undefined;
  for (const k of ['loss', 'acc', 'perplexity'] as const) {
    const values = m[k];
    if (values !== undefined && values.length !== n) return `\`${path}.${k}\` must have one value per lambda (${n}), has ${values.length}`;
  }
  return undefined;
}

/** The fields of a loss-barrier curve (also the top-level fields of a barrier result). */
export const curveEntries = {
  lambdas: numArray(),
  naive: pathMetricsSchema,
  aligned: v.optional(pathMetricsSchema),
  barrier: obj({ naive: num(), aligned: v.optional(num()) }),
};

interface CurveSeries {
  lambdas: number[];
  naive: PathMetrics;
  aligned?: PathMetrics;
}

/**
 * One rule for every curve: `loss`, `acc` and (language models) `perplexity` of each path have
 * exactly one value per λ.
 */
export function curveLengths<T extends CurveSeries>(): v.CheckAction<T, v.ErrorMessage<v.CheckIssue<T>>> {
  const problem = (c: CurveSeries): string | undefined =>
    seriesLengthProblem(c.naive, 'naive', c.lambdas.length) ?? seriesLengthProblem(c.aligned, 'aligned', c.lambdas.length);
  return v.check((c) => problem(c) === undefined, (issue) => problem(issue.input) ?? 'has series of the wrong length');
}

/** The loss/accuracy curve along the linear path. */
const curveObject = obj(curveEntries);
export const barrierCurveSchema = v.pipe(curveObject, curveLengths<v.InferOutput<typeof curveObject>>());
export type BarrierCurve = v.InferOutput<typeof barrierCurveSchema>;

/** A tensor's element count and, over its finite values, min, max, mean and std; NaN and ±Inf counts. */
export const tensorMomentEntries = {
  count: int(0),
  min: num(),
  max: num(),
  mean: num(),
  std: num(),
  nanCount: int(0),
  infCount: int(0),
};

export const tensorStatsResultSchema = v.pipe(
  obj({
    tensor: nonEmpty(),
    ...tensorMomentEntries,
    histogram: obj({ edges: numArray(), counts: v.array(int(0), 'must be an array of counts') }),
  }),
  // One rule: one more edge than counts, or neither (a tensor without finite values).
  v.check(
    (s) => s.histogram.edges.length === s.histogram.counts.length + 1 || (s.histogram.edges.length === 0 && s.histogram.counts.length === 0),
    'histogram must have one more edge than counts',
  ),
);
export type TensorStatsResult = v.InferOutput<typeof tensorStatsResultSchema>;

