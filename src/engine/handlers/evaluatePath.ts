/**
 * `evaluatePath`: loss and accuracy of theta(lambda) = (1 - lambda) A + lambda pi(B) on the data,
 * for this worker's share of a barrier curve's lambdas. A and B are read once, the data is
 * uploaded once; per lambda only the interpolated weights are built (and, for BatchNorm nets
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
import { loadPathEnds } from '../compute/pathModels';

/** Examples per batch: large enough for efficient matmuls, small enough to cancel within a second. */
export const EVAL_BATCH = 2000;
/** Training examples used to recompute BatchNorm statistics at each lambda. */
export const BN_RESET_EXAMPLES = 5000;

export async function evaluatePathHandler(req: EvaluatePathRequest, ctx: HandlerContext): Promise<EvaluatePathResult> {
  ctx.onProgress({ stage: 'loading', fraction: 0 });
  const ends = await loadPathEnds({ a: req.a, b: req.b, perms: req.perms, spec: req.spec, model: req.model, signal: ctx.signal });
  throwIfCancelled(ctx.signal, 'evaluatePath');
  const which = req.data.split === 'train' ? 'train' : 'test';
  const data = await loadDataset(req.data, which);
  const batches = toBatches(data, EVAL_BATCH);
  let bnBatches: Batches | undefined;
  let firstA: tf.Tensor2D[] | undefined;
  let firstB: tf.Tensor2D[] | undefined;
  const loss: number[] = [];
  const acc: number[] = [];
  try {
    // MLPs: the first layer's outputs for A and pi(B), mixed per lambda instead of recomputed.
    const probe = buildModel(ends.a, ends.config);
    const first = probe.inputLinear;
    probe.dispose();
    if (first) {
      firstA = await linearOutputs(batches, ends.a.get(`${first}.weight`)!, ends.a.get(`${first}.bias`), ctx.signal);
      firstB = await linearOutputs(batches, ends.b.get(`${first}.weight`)!, ends.b.get(`${first}.bias`), ctx.signal);
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
    batches.dispose();
    bnBatches?.dispose();
    for (const t of [...(firstA ?? []), ...(firstB ?? [])]) t.dispose();
  }
  return { lambdas: [...req.lambdas], loss, acc };
}
