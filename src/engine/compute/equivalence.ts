/**
 * Functional-equivalence check: permuting B by a correct spec leaves its function unchanged
 * (paper section 2), so B and pi(B) must give the same logits. A difference beyond float
 * rounding means the spec does not describe the architecture.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFeaturesFit } from './dataFit';
import type { TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { mulberry32 } from '../../core/matching/prng';
import type { EquivalenceReport } from '../protocol';
import { isFamilyId } from '../../core/families/family';
import { CORE_FAMILIES, coreFamily } from '../../core/families/registry';

/** Relative logit difference accepted as float rounding. */
export const EQUIVALENCE_TOLERANCE = 1e-4;

export interface EquivalenceBatch {
  readonly x: tf.Tensor;
  readonly kind: 'data' | 'random';
}

/** The first `n` examples of the data, or seeded uniform [0, 1) inputs of `inputShape`. */
export function equivalenceBatch(inputShape: readonly number[], data: Dataset | undefined, n = 64, seed = 0): EquivalenceBatch {
  if (data && data.n > 0) {
    const m = Math.min(n, data.n);
    const per = data.xShape.slice(1);
    assertFeaturesFit(per, inputShape, data.source);
    const stride = per.reduce((a, b) => a * b, 1);
    return { x: tf.tensor(data.x.subarray(0, m * stride), [m, ...per]), kind: 'data' };
  }
  const rand = mulberry32(seed);
  const size = n * inputShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rand();
  return { x: tf.tensor(values, [n, ...inputShape]), kind: 'random' };
}

type Forward = (x: tf.Tensor) => tf.Tensor;

/** Runs B and pi(B) on the batch and compares their logits. */
export function checkEquivalence(forwardB: Forward, forwardPiB: Forward, batch: EquivalenceBatch, family?: string): EquivalenceReport {
  const [maxAbsDiff, maxAbs] = tf.tidy(() => {
    const lb = forwardB(batch.x);
    const lp = forwardPiB(batch.x);
    return [tf.max(tf.abs(tf.sub(lb, lp))).dataSync()[0], tf.max(tf.abs(lb)).dataSync()[0]];
  });
  const relDiff = maxAbs > 0 ? maxAbsDiff / maxAbs : maxAbsDiff;
  const ok = Number.isFinite(relDiff) && relDiff <= EQUIVALENCE_TOLERANCE;
  const report: EquivalenceReport = { maxAbsDiff, relDiff, ok, batch: batch.kind };
  if (ok) return report;
  return { ...report, message: `pi(B) computes a different function than B (largest logit difference ${maxAbsDiff.toPrecision(3)}, ${relDiff.toPrecision(3)} of the largest logit): ${likelyCause(family)}` };
}

function likelyCause(family: string | undefined): string {
  const base = 'the permutation spec does not match the architecture';
  // A spec file's family is free text: a family id, or the name several families are reported by (`transformer`).
  const f = isFamilyId(family) ? coreFamily(family) : CORE_FAMILIES.find((c) => c.reportedAs === family);
  return f ? `${base} (${f.mismatchHint})` : `${base} (a layer order or a residual stream the spec misses); write the spec by hand`;
}
