/** Weight matching (paper §3.2, Algorithm 1) with the tfjs cost-matrix products. */
import { matchWeights, memoryBudgetOf } from './common';
import type { MatchingMethod } from './method';

export const weight: MatchingMethod = {
  id: 'weight',
  // Every product decodes its operands anyway: a 1B BF16 pair is held in 4.1 GiB, not 8.2.
  keepsStoredDtype: true,
  run: ({ req, spec, a, b, ctx }) => matchWeights(spec, a, b, req.seed, req.maxIter, ctx, memoryBudgetOf(req)),
};
