/**
 * merge --repair: the merged model (1 - lambda) A + lambda pi(B) with REPAIR (Jordan et al. 2022)
 * applied exactly as `barrier --repair` applies it at that lambda: the same sites, the same
 * statistics (an MLP's hidden units on the first BN_RESET_EXAMPLES examples of the training split;
 * a language model's REPAIR sites on the first sequences of the token data, lm/repair.ts), the
 * same affine correction folded into the weights. The written file is then a plain checkpoint of
 * the reference's architecture and names; before it is written, its tensors as the file will hold
 * them (rounded to the output dtype) are run against the repaired weights the barrier evaluates.
 */
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset } from '../../core/data';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { interpolate } from '../../core/matching/merge';
import { defaultMemoryBudget } from '../../core/memoryBudget';
import { readModelConfig } from '../compute/modelConfig';
import { repairInterpolated, repairLayers, unitStats } from '../compute/repair';
import { checkLmReparameterised } from '../compute/transformerEquivalence';
import { checkPermutedEquivalence } from '../families/equivalence';
import { buildModel } from '../families/build';
import { EngineError, throwIfCancelled } from '../errors';
import type { HandlerContext } from '../handlerContext';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig } from '../lm/config';
import { lmRepairSites, lmUnitStats, repairLmInterpolated, repairSequences } from '../lm/repair';
import type { DataOptions, EquivalenceReport, MergeResult } from '../protocol';
import { BN_RESET_EXAMPLES } from './evaluatePath';
import { lmActivationBudget, tokenInput } from './evaluateLmPath';
import * as tf from '@tensorflow/tfjs-core';

export type RepairInfo = NonNullable<MergeResult['repair']>;

export interface RepairedMerge {
  /** The merged weights with the correction folded in (float32, by the reference's tensor names). */
  readonly tensors: Map<string, DenseTensor>;
  readonly info: Omit<RepairInfo, 'check'>;
  /** Runs `written` (the tensors as the file will hold them) against `tensors`. */
  check(written: ReadonlyMap<string, DenseTensor>, seed: number): EquivalenceReport;
}

/** The repaired merge of `a` and `piB` (float tensors of the reference, pi(B) already permuted) at `lambda`. */
export async function repairedMerge(
  reference: string, a: Map<string, DenseTensor>, piB: Map<string, DenseTensor>, lambda: number,
  req: { readonly data: DataOptions; readonly model?: string; readonly memoryBudget?: number }, ctx: HandlerContext,
): Promise<RepairedMerge> {
  ctx.onProgress({ stage: 'repair', message: `REPAIR: measuring both models on ${req.data.path}` });
  return lmCheckpointFamily(reference) !== undefined ? repairedLm(reference, a, piB, lambda, req, ctx) : repairedClassifier(reference, a, piB, lambda, req, ctx);
}

async function repairedLm(
  reference: string, a: Map<string, DenseTensor>, piB: Map<string, DenseTensor>, lambda: number,
  req: { readonly data: DataOptions; readonly memoryBudget?: number }, ctx: HandlerContext,
): Promise<RepairedMerge> {
  const paths = locateLmCheckpoint(reference);
  const config = await readLmConfig(paths.config);
  const budget = req.memoryBudget ?? defaultMemoryBudget();
  const tokens = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer, budget, ctx.signal);
  const { input } = tokens;
  // As evaluateLmPath sizes it, so that the statistics are those of barrier --repair on the same data.
  const sequences = repairSequences(config, input, lmActivationBudget(a, config, budget));
  const sa = await lmUnitStats(a, config, input, sequences);
  throwIfCancelled(ctx.signal, 'merge');
  const sb = await lmUnitStats(piB, config, input, sequences);
  throwIfCancelled(ctx.signal, 'merge');
  ctx.onProgress({ stage: 'repair', message: `REPAIR: renormalising the merged model's units on ${sequences} sequences` });
  const tensors = await repairLmInterpolated(interpolate(a, piB, lambda), lambda, sa, sb, config, input, sequences);
  return {
    tensors,
    info: { sites: lmRepairSites(tensors, config).length, data: req.data.path, split: 'test', examples: sequences },
    check: (written, seed) => checkLmReparameterised(tensors, config, written, config, seed).report,
  };
}

async function repairedClassifier(
  reference: string, a: Map<string, DenseTensor>, piB: Map<string, DenseTensor>, lambda: number,
  req: { readonly data: DataOptions; readonly model?: string; readonly memoryBudget?: number }, ctx: HandlerContext,
): Promise<RepairedMerge> {
  const config = readModelConfig(reference, req.model);
  const { hidden } = repairLayers(a);
  // REPAIR's shift goes into each hidden layer's bias: a layer without one would need a new tensor.
  const noBias = hidden.find((layer) => !a.has(`${layer}.bias`));
  if (noBias !== undefined) throw new EngineError('InvalidRequest', `${reference}: merge --repair folds the correction into each hidden layer's bias, and \`${noBias}\` has none (barrier --repair evaluates it; the merged file would need a tensor the model does not have)`, reference);
  const probe = buildModel(a, config);
  const inputShape = [...probe.inputShape];
  probe.dispose();
  const activation = config.activation ?? 'relu';
  // The examples barrier --repair measures on (evaluatePath.ts): the first of the training split.
  const train = await loadDataset({ ...req.data, limit: BN_RESET_EXAMPLES }, 'train', { budget: req.memoryBudget ?? defaultMemoryBudget(), inputShape });
  const x = tf.tensor2d(train.x, [train.n, train.x.length / Math.max(1, train.n)]);
  try {
    const sa = await unitStats(a, x, activation);
    const sb = await unitStats(piB, x, activation);
    throwIfCancelled(ctx.signal, 'merge');
    ctx.onProgress({ stage: 'repair', message: `REPAIR: renormalising the merged model's units on ${train.n} examples` });
    const tensors = await repairInterpolated(interpolate(a, piB, lambda), lambda, sa, sb, x, activation);
    return {
      tensors,
      info: { sites: hidden.length, data: req.data.path, split: 'train', examples: train.n },
      check: (written, seed) => checkPermutedEquivalence(tensors, written, config, train, seed),
    };
  } finally {
    x.dispose();
  }
}
