/** Weight matching (paper §3.2, Algorithm 1) with the tfjs cost-matrix products. */
import { matchWeights, memoryBudgetOf } from './common';
import type { MatchingMethod } from './method';

export const weight: MatchingMethod = {
  id: 'weight',
  run: ({ req, spec, a, b, ctx }) => matchWeights(spec, a, b, req.seed, req.maxIter, ctx, memoryBudgetOf(req)),
};
