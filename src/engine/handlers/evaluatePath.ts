/**
 * `evaluatePath`: loss and accuracy of theta(lambda) = (1 - lambda) A + lambda pi(B) on the data,
 * for this worker's share of a barrier curve's lambdas. A and B are read once; the data and the
 * first layer's outputs come from the worker's cache (pathCache), shared by a barrier's chunks;
 * per lambda only the interpolated weights are built (and, for BatchNorm nets
 * when asked, their statistics recomputed on training batches, paper appendix A.4).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadDataset } from '../../core/data';
import { interpolate } from '../../core/matching/merge';
import { throwIfCancelled } from '../errors';
import type { EvaluatePathRequest, EvaluatePathResult } from '../protocol';
import type { HandlerContext } from '../dispatch';
import { resetBatchNorm } from '../compute/batchNormReset';
import { evaluateModel, linearOutputs, toBatches, type Batches } from '../compute/evaluate';
import { buildModel } from '../compute/models';
import { layerPermutation, loadPathEnds } from '../compute/pathModels';
import { pathCache, type Lease } from '../compute/pathCache';

/** Examples per batch: large enough for efficient matmuls, small enough to cancel within a second. */
export const EVAL_BATCH = 2000;
/** Training examples used to recompute BatchNorm statistics at each lambda. */
export const BN_RESET_EXAMPLES = 5000;

export async function evaluatePathHandler(req: EvaluatePathRequest, ctx: HandlerContext): Promise<EvaluatePathResult> {
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
  try {
    const dataLease = await pathCache.data(req.data, which, EVAL_BATCH);
    leases.push(dataLease);
    const { dataset: data, batches } = dataLease.value;
    throwIfCancelled(ctx.signal, 'evaluatePath');
    // MLPs: the first layer's outputs for A and pi(B), mixed per lambda instead of recomputed.
    const probe = buildModel(ends.a, ends.config);
    const first = probe.inputLinear;
    probe.dispose();
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
      const model = buildModel(interpolate(ends.a, ends.b, lambda), ends.config);
      try {
        if (req.resetBatchNorm && model.batchNormLayers.length > 0) {
          if (!bnBatches) {
            const train = which === 'train' ? data : await loadDataset({ ...req.data, limit: BN_RESET_EXAMPLES }, 'train');
            bnBatches = toBatches(train.n > BN_RESET_EXAMPLES ? { ...train, n: BN_RESET_EXAMPLES } : train, 500);
          }
          await resetBatchNorm(model, bnBatches, ctx.signal);
        }
        const [fa, fb] = [firstA, firstB];
        const m = await evaluateModel(model, batches, ctx.signal, (k) =>
          fa && fb ? { firstLinearOutput: tf.add(tf.mul(fa[k], 1 - lambda), tf.mul(fb[k], lambda)) as tf.Tensor2D } : {},
        );
        loss.push(m.loss);
        acc.push(m.acc);
      } finally {
        model.dispose();
      }
      ctx.onProgress({ stage: 'evaluating', fraction: (i + 1) / req.lambdas.length, message: `lambda ${lambda.toFixed(3)}: loss ${loss[i].toFixed(4)}, accuracy ${acc[i].toFixed(4)}` });
    }
  } finally {
    bnBatches?.dispose();
    for (const t of owned) t.dispose();
    for (const l of leases) l.done();
  }
  return { lambdas: [...req.lambdas], loss, acc };
}
