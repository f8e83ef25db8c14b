/**
 * The straight-through estimator for Hugging Face language models (GPT-2, the Llama family,
 * BERT) on token data (`req.data`, read like a barrier's): activation matching first, then the
 * learned refinement of src/engine/compute/lmSte.ts, with the memory plan's batch.
 */
import type { PermSpec, TensorMap } from '../../core/checkpoint';
import { defaultOptions } from '../../core/methods/registry';
import { lmSteMatching, type LmSteOptions, type LmSteResult } from '../compute/lmSte';
import type { HandlerContext } from '../handlerContext';
import { formatBytes } from '../../../shared/bytes';
import { OVER_BUDGET } from '../../core/memoryBudget';
import { base } from '../loadTensors';
import { EngineError } from '../errors';
import { tokenInput } from '../handlers/evaluateLmPath';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig, type LmConfig } from '../lm/config';
import { DEFAULT_LM_BUDGET_BYTES, lmModelBytes } from '../lm/memoryPlan';
import type { AlignRequest } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { memoryBudgetOf } from './common';
import { lmActivationPerms } from './lmActivation';

export async function lmStePerms(req: AlignRequest, spec: PermSpec, a: TensorMap, b: TensorMap, ctx: HandlerContext): Promise<{ perms: Record<string, Int32Array>; steps: number }> {
  if (!req.data) throw new EngineError('InvalidRequest', 'the straight-through estimator needs token data (--data): it trains on it');
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  const budget = memoryBudgetOf(req);
  const { input } = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer, budget, ctx.signal);
  const init = await lmActivationPerms(req, spec, a, b, ctx);
  const r = await lmSteMatching(spec, a, b, config, input, init, lmSteOptions(req, config, ctx));
  logSteRun(r, ctx);
  return { perms: { ...r.perms }, steps: r.stepLoss.length };
}

/** The request's STE options, with the training step's memory: what the budget leaves beside about 8 copies of the weights, or a one-line refusal. */
export function lmSteOptions(req: AlignRequest, config: LmConfig, ctx: HandlerContext): LmSteOptions {
  const budget = memoryBudgetOf(req);
  const opts = req.ste ?? (defaultOptions('ste') as { epochs: number; batchSize: number; learningRate: number });
  // Beside the process: A, theta~, Adam's two moments, pi(B) and the step's midpoint and offsets (about 8 copies).
  const left = budget - process.memoryUsage.rss() - 4 * lmModelBytes(config);
  if (left <= 0) throw new EngineError(OVER_BUDGET, `${base(req.b)}: the straight-through estimator holds about 8 copies of the model's weights (${formatBytes(4 * lmModelBytes(config))}), over the memory budget of ${formatBytes(budget)}`, req.b);
  return { ...opts, seed: req.seed, maxIter: req.maxIter, matmul: tfMatMul, budgetBytes: Math.min(left, 2 * DEFAULT_LM_BUDGET_BYTES), signal: ctx.signal, onProgress: ctx.onProgress };
}

export function logSteRun(r: Pick<LmSteResult, 'stepLoss' | 'batch' | 'checkLoss'>, ctx: HandlerContext): void {
  ctx.log(`STE: ${r.stepLoss.length} steps of ${r.batch} sequences; midpoint loss on the check windows ${r.checkLoss.start.toFixed(4)} after activation matching, ${r.checkLoss.result.toFixed(4)} after STE`);
}
