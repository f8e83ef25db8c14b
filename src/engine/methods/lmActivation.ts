/**
 * Activation matching of Hugging Face language models (GPT-2, the Llama family, BERT) on token
 * data (`req.data`, read like a barrier's): the residual stream, the MLP hidden units and, when
 * the spec has them, the attention heads with their inner permutations.
 */
import type { PermSpec, TensorMap } from '../../core/checkpoint';
import { lmActivationMatching, lmActivationShapes } from '../compute/activationMatching';
import { planLmActivationMatching } from '../../core/lmActivationMemory';
import type { HandlerContext } from '../handlerContext';
import { formatBytes } from '../../../shared/bytes';
import { MemoryBudgetError, OVER_BUDGET } from '../../core/memoryBudget';
import { EngineError } from '../errors';
import { base } from '../loadTensors';
import { tokenInput } from '../handlers/evaluateLmPath';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig } from '../lm/config';
import { lmFeatureAxes } from '../lm/featureAxes';
import { namePrefix } from '../lm/layers';
import { buildLm } from '../lm/model';
import { lmModelBytes } from '../lm/memoryPlan';
import type { AlignRequest } from '../protocol';
import { memoryBudgetOf } from './common';

export async function lmActivationPerms(req: AlignRequest, spec: PermSpec, ta: TensorMap, tb: TensorMap, ctx: HandlerContext): Promise<Record<string, Int32Array>> {
  if (!req.data) throw new EngineError('InvalidRequest', 'activation matching needs token data (--data): it runs both language models on it');
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  const { input } = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer, memoryBudgetOf(req), ctx.signal);
  const which = lmFeatureAxes(spec, config, namePrefix(ta, config, paths.weights));
  const memoryBudget = memoryBudgetOf(req);
  // What the process holds (measured: the runtime, A and B as read) and both models' backend
  // copies, built next: the sums and features are planned beside them. Counting only the sums, a
  // 77 MB-per-model Llama under 300 MB peaked at 1.4 GB.
  const heldBytes = process.memoryUsage.rss() + lmModelBytes(config);
  // Refused before the models are built (lmActivationMatching plans the same again).
  const plan = overBudgetAsEngineError(req.b, () => planLmActivationMatching(lmActivationShapes(which, config, input), memoryBudget, 16, heldBytes));
  if (plan.passes.length > 1) ctx.log(`activation matching: ${formatBytes(plan.statisticsBytes)} of statistics for all blocks at once; ${plan.passes.length} passes over the token data to stay within the memory budget of ${formatBytes(plan.budget)}`);
  const a = buildLm(ta, config, paths.weights);
  try {
    const b = buildLm(tb, config, req.b);
    try {
      const r = await lmActivationMatching(spec, a, b, input, which, { signal: ctx.signal, onProgress: ctx.onProgress, memoryBudget, heldBytes });
      if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
      return r.perms;
    } finally {
      b.dispose();
    }
  } finally {
    a.dispose();
  }
}


/** Runs `plan`, reporting its MemoryBudgetError as one line naming B. */
function overBudgetAsEngineError<T>(b: string, plan: () => T): T {
  try {
    return plan();
  } catch (e) {
    if (e instanceof MemoryBudgetError) throw new EngineError(OVER_BUDGET, `${base(b)}: ${e.message}`, b);
    throw e;
  }
}
