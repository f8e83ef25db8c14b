/**
 * `evaluatePath`: loss and accuracy of theta(lambda) = (1 - lambda) A + lambda pi(B) on the data,
 * for this worker's share of a barrier curve's lambdas. A and B are read once; the data and the
 * first layer's outputs come from the worker's cache (pathCache), shared by a barrier's chunks;
 * per lambda only the interpolated weights are built (and, for BatchNorm nets
 * when asked, their statistics recomputed on training batches, paper appendix A.4).
 * Batch sizes come from a memory plan (compute/batchPlan.ts): activation bytes per example,
 * measured on a probe batch, times the batch size fit in the request's budget.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset, type DataLimits, type Dataset } from '../../core/data';
import { interpolate } from '../../core/matching/merge';
import { currentBackend } from '../backend';
import { throwIfCancelled } from '../errors';
import type { EvaluatePathRequest, EvaluatePathResult, EvaluationPlan } from '../protocol';
import type { HandlerContext } from '../handlerContext';
import { resetBatchNorm } from '../compute/batchNormReset';
import { activationBytesPerExample } from '../compute/activationBytes';
import { planBatchSize } from '../compute/batchPlan';
import { defaultMemoryBudget } from '../../core/memoryBudget';
import { evaluateModel, linearOutputs, toBatches, type Batches } from '../compute/evaluate';
import { buildModel } from '../families/build';
import { layerPermutation, loadPathEnds, type PathEnds } from '../compute/pathModels';
import { pathCache, type Lease } from '../compute/pathCache';
import { repairInterpolated, unitStats } from '../compute/repair';
import { isVit, repairVit, VIT_REPAIR_EXAMPLES, vitUnitStats } from '../compute/vitRepair';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { evaluateLmPathHandler } from './evaluateLmPath';

/** Largest evaluation batch: large enough for efficient matmuls, small enough to cancel within a second. */
export const EVAL_BATCH = 2000;
/** Training examples used to recompute BatchNorm statistics at each lambda (the first ones of the training split). */
export const BN_RESET_EXAMPLES = 5000;
/** Largest batch of the BatchNorm reset (statistics are averaged over batches of this size). */
export const BN_RESET_BATCH = 500;

const bytesOf = (m: ReadonlyMap<string, DenseTensor>): number => [...m.values()].reduce((s, t) => s + t.data.byteLength, 0);
const exampleBytes = (d: Dataset): number => (d.n > 0 ? d.x.byteLength / d.n : 0);

interface PathPlan {
  /** Activation bytes per example of the larger of the eval and (when used) BatchNorm-reset forward passes. */
  readonly perExample: number;
  readonly first?: string;
  readonly hasBatchNorm: boolean;
  /** The request's memory budget and the model's input: data sets are refused from their headers when they do not fit. */
  readonly limits: DataLimits;
  /** Batch size for a data set (the memory plan, given what the data set and the BatchNorm-reset examples hold). */
  batchFor(d: Dataset, bn: Dataset | undefined, what: string): number;
}

/** Measures the model's activations and returns the batch planner for this request's budget. */
async function planPath(req: EvaluatePathRequest, ends: PathEnds): Promise<PathPlan> {
  const probe = buildModel(ends.a, ends.config);
  let perExample: number;
  let fixed: number;
  const first = probe.inputLinear;
  const hasBatchNorm = probe.batchNormLayers.length > 0;
  const inputShape = [...probe.inputShape];
  try {
    ({ perExample, fixed } = await activationBytesPerExample(probe));
    if (req.resetBatchNorm && hasBatchNorm) {
      const bn = await activationBytesPerExample(probe, { batchNorm: 'batch', onBatchStats: () => undefined });
      perExample = Math.max(perExample, bn.perExample);
      fixed = Math.max(fixed, bn.fixed);
    }
  } finally {
    probe.dispose();
  }
  const budget = req.memoryBudget ?? defaultMemoryBudget();
  const backend = currentBackend();
  // Weights: A, B and pi(B) in JS, plus one interpolated model uploaded at a time. Counted the same
  // for both paths, so a worker's naive and aligned chunks plan the same batch and share its cache.
  const weights = bytesOf(ends.a) * 4 + fixed;
  return {
    perExample,
    ...(first ? { first } : {}),
    hasBatchNorm,
    limits: { budget, inputShape },
    batchFor: (d, bn, what) => {
      // The data set in JS and uploaded; MLPs also keep first-layer outputs of A, B and pi(B) (4 bytes per unit).
      const firstUnits = first ? (ends.a.get(`${first}.weight`)?.shape[0] ?? 0) : 0;
      const data = d.x.byteLength * 2 + d.y.byteLength * 2 + d.n * firstUnits * 4 * 3;
      // The BatchNorm-reset examples, uploaded (in JS too when they are not the evaluated data).
      const bnData = bn ? Math.min(bn.n, BN_RESET_EXAMPLES) * exampleBytes(bn) * (bn === d ? 1 : 2) : 0;
      return planBatchSize({ budget, backend, resident: weights + data + bnData, perExample, maxBatch: Math.min(EVAL_BATCH, Math.max(1, d.n)), what });
    },
  };
}

export async function evaluatePathHandler(req: EvaluatePathRequest, ctx: HandlerContext): Promise<EvaluatePathResult> {
  // Language-model families take token data and their LM forward passes.
  if (lmCheckpointFamily(req.a)) return evaluateLmPathHandler(req, ctx);
  ctx.onProgress({ stage: 'loading', fraction: 0 });
  const ends = await loadPathEnds({ a: req.a, b: req.b, perms: req.perms, spec: req.spec, model: req.model, signal: ctx.signal });
  throwIfCancelled(ctx.signal, 'evaluatePath');
  const which = req.data.split === 'train' ? 'train' : 'test';
  // Batches and first-layer outputs come from the worker's cache: a barrier's later chunks reuse them.
  const leases: Lease<unknown>[] = [];
  const owned: tf.Tensor[] = [];
  let bnBatches: Batches | undefined;
  const loss: number[] = [];
  const acc: number[] = [];
  let plan: EvaluationPlan | undefined;
  /** REPAIR at lambda: the interpolated weights with the correction folded in. */
  let repairing: ((theta: Map<string, DenseTensor>, lambda: number) => Promise<Map<string, DenseTensor>>) | undefined;
  try {
    const planner = await planPath(req, ends);
    const first = planner.first;
    // The first BN_RESET_EXAMPLES examples of the training split (of the evaluated data when that is the training split).
    const resetting = req.resetBatchNorm === true && planner.hasBatchNorm;
    const bnSource = resetting && which !== 'train' ? await loadDataset({ ...req.data, limit: BN_RESET_EXAMPLES }, 'train', planner.limits) : undefined;
    // REPAIR: unit statistics of A and pi(B) on the first training examples, once per chunk.
    if (req.repair) {
      // A ViT's sites are its blocks' MLP units (compute/vitRepair.ts), an MLP's its hidden layers.
      const vit = isVit(ends.a);
      const train = await loadDataset({ ...req.data, limit: vit ? VIT_REPAIR_EXAMPLES : BN_RESET_EXAMPLES }, 'train', planner.limits);
      const x = tf.tensor2d(train.x, [train.n, train.x.length / Math.max(1, train.n)]);
      owned.push(x);
      if (vit) {
        const [sa, sb] = [vitUnitStats(ends.a, ends.config, x), vitUnitStats(ends.b, ends.config, x)];
        repairing = async (theta, lambda) => repairVit(theta, lambda, sa, sb, ends.config, x).tensors;
      } else {
        const activation = ends.config.activation ?? 'relu';
        const [sa, sb] = [await unitStats(ends.a, x, activation), await unitStats(ends.b, x, activation)];
        repairing = (theta, lambda) => repairInterpolated(theta, lambda, sa, sb, x, activation);
      }
      plan = { batchSize: 0, activationBytesPerExample: 0, repair: { split: 'train', examples: train.n } };
    }
    const name = req.b.split(/[\\/]/).pop();
    const dataLease = await pathCache.data(req.data, which, planner.limits, (d) => planner.batchFor(d, resetting ? (bnSource ?? d) : undefined, `evaluating ${name} on ${d.source}`));
    leases.push(dataLease);
    const { dataset: data, batches, batchSize } = dataLease.value;
    plan = { ...plan, batchSize, activationBytesPerExample: Math.round(planner.perExample), data: { source: data.source, split: which, examples: data.n } };
    throwIfCancelled(ctx.signal, 'evaluatePath');
    // MLPs: the first layer's outputs for A and pi(B), mixed per lambda instead of recomputed.
    let firstA: tf.Tensor2D[] | undefined;
    let firstB: tf.Tensor2D[] | undefined;
    if (first) {
      const w = `${first}.weight`;
      const bias = `${first}.bias`;
      const la = await pathCache.firstLayer(dataLease.value, req.a, first, ends.a.get(w)!, ends.a.get(bias), ctx.signal);
      leases.push(la);
      firstA = la.value;
      const perm = layerPermutation(ends, first);
      if (perm.kind === 'other') {
        firstB = await linearOutputs(batches, ends.b.get(w)!, ends.b.get(bias), ctx.signal);
        owned.push(...firstB);
      } else {
        // pi(B) only reorders this layer's output units: its outputs are B's with the columns gathered.
        const lb =
          perm.kind === 'identity'
            ? await pathCache.firstLayer(dataLease.value, req.b, first, ends.bStored.get(w)!, ends.bStored.get(bias), ctx.signal)
            : await pathCache.gatheredFirstLayer(dataLease.value, req.b, first, ends.bStored.get(w)!, ends.bStored.get(bias), perm.perm, ctx.signal);
        leases.push(lb);
        firstB = lb.value;
      }
    }
    for (const [i, lambda] of req.lambdas.entries()) {
      throwIfCancelled(ctx.signal, 'evaluatePath');
      const theta = interpolate(ends.a, ends.b, lambda);
      const model = buildModel(repairing ? await repairing(theta, lambda) : theta, ends.config);
      try {
        if (req.resetBatchNorm && model.batchNormLayers.length > 0) {
          if (!bnBatches) {
            const train = bnSource ?? data;
            const examples = Math.min(train.n, BN_RESET_EXAMPLES);
            const bnBatch = Math.min(BN_RESET_BATCH, batchSize);
            bnBatches = toBatches(train.n > examples ? { ...train, n: examples } : train, bnBatch);
            plan = { ...plan, batchNormReset: { split: 'train', examples, batchSize: bnBatch } };
          }
          await resetBatchNorm(model, bnBatches, ctx.signal);
        }
        const [fa, fb] = [firstA, firstB];
        const m = await evaluateModel(model, batches, ctx.signal, (k) =>
          // REPAIR changes the first layer: its outputs are not the mix of A's and B's.
          fa && fb && !repairing ? { firstLinearOutput: tf.add(tf.mul(fa[k], 1 - lambda), tf.mul(fb[k], lambda)) as tf.Tensor2D } : {},
        );
        loss.push(m.loss);
        acc.push(m.acc);
      } finally {
        model.dispose();
      }
      ctx.onProgress({
        stage: 'evaluating',
        fraction: (i + 1) / req.lambdas.length,
        message: `λ = ${lambda.toFixed(3)}: loss ${loss[i].toFixed(4)}, accuracy ${acc[i].toFixed(4)}`,
        point: { lambda, loss: loss[i], acc: acc[i] },
      });
    }
  } finally {
    bnBatches?.dispose();
    for (const t of owned) t.dispose();
    for (const l of leases) l.done();
  }
  return { lambdas: [...req.lambdas], loss, acc, ...(plan ? { plan } : {}) };
}
