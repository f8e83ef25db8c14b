/**
 * merge --repair: the merged model (1 - lambda) A + lambda pi(B) with REPAIR (Jordan et al. 2022)
 * applied exactly as `barrier --repair` applies it at that lambda: the same sites, the same
 * statistics (an MLP's hidden units on the first BN_RESET_EXAMPLES examples of the training split;
 * a ViT's MLP units on its first VIT_REPAIR_EXAMPLES images, compute/vitRepair.ts; a language
 * model's REPAIR sites on the first sequences of the token data, lm/repair.ts), the
 * same affine correction folded into the weights. The written file is then a plain checkpoint of
 * the reference's architecture and names. Before it is written, its tensors as the file will hold
 * them (rounded to the output dtype) run against the interpolated model with the corrections
 * applied in the pass (the function REPAIR defines, which the folded weights the barrier
 * evaluates must compute): seeded random tokens for a language model, the first examples of the
 * data for a classifier.
 */
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset } from '../../core/data';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { interpolate } from '../../core/matching/merge';
import { defaultMemoryBudget } from '../../core/memoryBudget';
import { readModelConfig } from '../compute/modelConfig';
import { correctedMlpForward, repairLayers, repairMlp, unitStats } from '../compute/repair';
import { correctedVitForward, isVit, repairVit, VIT_REPAIR_EXAMPLES, vitUnitStats } from '../compute/vitRepair';
import type { ModelConfig } from '../../core/families/modelConfig';
import { checkEquivalence, equivalenceBatch, type EquivalenceBatch } from '../compute/equivalence';
import { TRANSFORMER_BATCH, tokenBatch } from '../compute/transformerEquivalence';
import { buildModel } from '../families/build';
import { EngineError, throwIfCancelled } from '../errors';
import type { HandlerContext } from '../handlerContext';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig, type LmConfig } from '../lm/config';
import { buildLm } from '../lm/model';
import { correctUnits, lmRepairSites, lmUnitStats, repairLm, repairSequences, type LmRepairCorrection } from '../lm/repair';
import type { DataOptions, EquivalenceReport, MergeResult } from '../protocol';
import type { TensorMap } from '../../core/checkpoint';
import { BN_RESET_EXAMPLES } from './evaluatePath';
import { lmActivationBudget, tokenInput } from './evaluateLmPath';
import * as tf from '@tensorflow/tfjs-core';

export type RepairInfo = NonNullable<MergeResult['repair']>;

export interface RepairedMerge {
  /** The merged weights with the correction folded in (float32, by the reference's tensor names). */
  readonly tensors: Map<string, DenseTensor>;
  readonly info: Omit<RepairInfo, 'check'>;
  /** Runs `written` (the tensors as the file will hold them) against the corrections applied in the pass. */
  check(written: ReadonlyMap<string, DenseTensor>, seed: number): EquivalenceReport;
}

/** The check's report, its message in this check's words. */
function reported(r: EquivalenceReport): EquivalenceReport {
  if (r.ok) return r;
  return { ...r, message: `the written weights' outputs differ from the repaired model's by up to ${r.maxAbsDiff.toPrecision(3)} (${r.relDiff.toPrecision(3)} of the largest output)` };
}

/** Logits of `written` against those of `theta` with each REPAIR site corrected in the pass, on seeded random tokens. */
function checkLmFold(theta: TensorMap, corrections: readonly LmRepairCorrection[], written: TensorMap, config: LmConfig, seed: number): EquivalenceReport {
  const s = Math.min(TRANSFORMER_BATCH.tokens, config.maxPositions ?? TRANSFORMER_BATCH.tokens);
  const batch = tokenBatch(config.vocab, TRANSFORMER_BATCH.sequences, s, seed);
  let expected: tf.Tensor | undefined;
  let model = buildLm(theta, config);
  try {
    const m = model;
    expected = tf.tidy(() => m.head(m.hidden(batch.x as tf.Tensor2D, { repair: (site, u) => correctUnits(u, corrections[site]) })));
    model.dispose();
    model = buildLm(written, config);
    const w = model;
    const kept = expected;
    return reported(checkEquivalence(() => kept, (x) => w.head(w.hidden(x as tf.Tensor2D)), batch, config.family));
  } finally {
    model.dispose();
    expected?.dispose();
    batch.x.dispose();
  }
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
  const theta = interpolate(a, piB, lambda);
  const { tensors, corrections } = await repairLm(theta, lambda, sa, sb, config, input, sequences);
  return {
    tensors,
    info: { sites: lmRepairSites(tensors, config).length, data: req.data.path, split: 'test', examples: sequences },
    check: (written, seed) => checkLmFold(theta, corrections, written, config, seed),
  };
}

async function repairedClassifier(
  reference: string, a: Map<string, DenseTensor>, piB: Map<string, DenseTensor>, lambda: number,
  req: { readonly data: DataOptions; readonly model?: string; readonly memoryBudget?: number }, ctx: HandlerContext,
): Promise<RepairedMerge> {
  const config = readModelConfig(reference, req.model);
  if (isVit(a)) return repairedVit(reference, a, piB, lambda, config, req, ctx);
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
    const theta = interpolate(a, piB, lambda);
    const { tensors, corrections } = await repairMlp(theta, lambda, sa, sb, x, activation);
    return {
      tensors,
      info: { sites: hidden.length, data: req.data.path, split: 'train', examples: train.n },
      check: (written) => {
        const model = buildModel(written, config);
        let batch: EquivalenceBatch | undefined;
        try {
          batch = equivalenceBatch(model.inputShape, train, 64);
          return reported(checkEquivalence(correctedMlpForward(theta, corrections, activation), model.forward, batch, model.family));
        } finally {
          model.dispose();
          batch?.x.dispose();
        }
      },
    };
  } finally {
    x.dispose();
  }
}

/** A ViT's repaired merge: its blocks' MLP units on the images barrier --repair measures (compute/vitRepair.ts). */
async function repairedVit(
  reference: string, a: Map<string, DenseTensor>, piB: Map<string, DenseTensor>, lambda: number, config: ModelConfig,
  req: { readonly data: DataOptions; readonly memoryBudget?: number }, ctx: HandlerContext,
): Promise<RepairedMerge> {
  const probe = buildModel(a, config);
  const inputShape = [...probe.inputShape];
  probe.dispose();
  const train = await loadDataset({ ...req.data, limit: VIT_REPAIR_EXAMPLES }, 'train', { budget: req.memoryBudget ?? defaultMemoryBudget(), inputShape });
  const x = tf.tensor2d(train.x, [train.n, train.x.length / Math.max(1, train.n)]);
  try {
    const sa = vitUnitStats(a, config, x);
    const sb = vitUnitStats(piB, config, x);
    throwIfCancelled(ctx.signal, 'merge');
    ctx.onProgress({ stage: 'repair', message: `REPAIR: renormalising the merged model's units on ${train.n} images` });
    const theta = interpolate(a, piB, lambda);
    const { tensors, corrections } = repairVit(theta, lambda, sa, sb, config, x);
    return {
      tensors,
      info: { sites: corrections.length, data: req.data.path, split: 'train', examples: train.n },
      check: (written) => {
        const model = buildModel(written, config);
        const expected = correctedVitForward(theta, corrections, config);
        let batch: EquivalenceBatch | undefined;
        try {
          batch = equivalenceBatch(model.inputShape, train, 8);
          return reported(checkEquivalence(expected.forward, model.forward, batch, model.family));
        } finally {
          model.dispose();
          expected.dispose();
          batch?.x.dispose();
        }
      },
    };
  } finally {
    x.dispose();
  }
}
