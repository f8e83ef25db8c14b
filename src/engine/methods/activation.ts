/** Activation matching (paper §3.1): one assignment per group from activation correlations on training data. */
import { readModelConfig } from '../../core/families/modelConfig';
import { activationMatchingFromTensors, MAX_ACTIVATION_BATCH } from '../compute/activationMatching';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { memoryBudgetOf, reportFor, trainingData } from './common';
import { lmActivationPerms } from './lmActivation';
import type { MatchingMethod } from './method';
import { denseTensors } from '../../core/heldTensor';
import { OVER_BUDGET } from '../../core/memoryBudget';
import { formatBytes } from '../../../shared/bytes';
import { EngineError } from '../errors';
import { base } from '../loadTensors';

export const activation: MatchingMethod = {
  id: 'activation',
  run: async (run) => {
    const { req, spec, ctx } = run;
    const a = denseTensors(run.a);
    const b = denseTensors(run.b);
    if (lmCheckpointFamily(req.a)) return reportFor(spec, a, b, await lmActivationPerms(req, spec, a, b, ctx), 1);
    const data = await trainingData(req);
    const config = readModelConfig(req.a, req.model);
    // What the process holds (measured: the runtime, A and B as read, the data set): the batches are planned beside it.
    const heldBytes = process.memoryUsage.rss();
    const r = await activationMatchingFromTensors(spec, a, b, config, data, { signal: ctx.signal, onProgress: ctx.onProgress, memoryBudget: memoryBudgetOf(req), heldBytes }).catch((e: unknown) => {
      if (e instanceof EngineError && e.kind === OVER_BUDGET && e.file === undefined) throw new EngineError(OVER_BUDGET, `${base(req.b)}: ${e.message}`, req.b);
      throw e;
    });
    const { plan } = r;
    if (plan.batchSize < Math.min(MAX_ACTIVATION_BATCH, data.n)) ctx.log(`activation matching: batches of ${plan.batchSize} examples (${formatBytes(plan.perExampleBytes)} per example) to stay within the memory budget of ${formatBytes(plan.budget)}`);
    if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
    return reportFor(spec, a, b, r.perms, 1);
  },
};
