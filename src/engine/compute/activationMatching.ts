/**
 * Activation matching (Git Re-Basin section 3.1): run A and B on the same data and, for each
 * permutation, match B's units to A's by the correlation of their post-activation features,
 * one linear assignment (maximise) per permutation. Features are streamed in batches: only
 * running sums are kept (sum a, sum b, sum a^2, sum b^2, A^T B). Conv features are pooled over
 * spatial positions (each position is one sample of the channel). Permutations no hidden
 * activation reveals (e.g. a residual stream not exposed) stay the identity.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PermSpec, Progress, TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { solveAssignmentMax } from '../../core/assignment/lap';
import { throwIfCancelled } from '../errors';
import { toBatches, type Batches } from './evaluate';
import { assertFeaturesFit } from './dataFit';
import type { ModelConfig } from './modelConfig';
import { buildModel, type Model } from './models';
import type { LmModel } from '../lm/layers';
import type { LmEvaluationInput } from '../lm/evaluate';

interface Stats {
  readonly n: number;
  count: number;
  readonly sumA: Float64Array;
  readonly sumB: Float64Array;
  readonly sqA: Float64Array;
  readonly sqB: Float64Array;
  readonly cross: Float64Array;
}

export interface ActivationMatchingResult {
  readonly perms: Record<string, Int32Array>;
  /** Per permutation: mean correlation of matched units before (identity) and after. */
  readonly correlation: Record<string, { before: number; after: number }>;
  /** Permutations left as the identity because no activation exposed them. */
  readonly unobserved: string[];
}

function asSamples(t: tf.Tensor): tf.Tensor2D {
  return tf.reshape(t, [-1, t.shape[t.rank - 1]]);
}

export async function activationMatching(
  spec: PermSpec,
  a: Model,
  b: Model,
  batches: Batches,
  opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<ActivationMatchingResult> {
  const stats = new Map<string, Stats>();
  for (let k = 0; k < batches.xs.length; k++) {
    throwIfCancelled(opts.signal, 'activation matching');
    tf.tidy(() => {
      const featsA = new Map<string, tf.Tensor2D[]>();
      const featsB = new Map<string, tf.Tensor2D[]>();
      const collect = (into: Map<string, tf.Tensor2D[]>) => (weight: string, f: tf.Tensor) => {
        const perm = spec.axes[weight]?.[0];
        if (typeof perm !== 'string') return;
        const list = into.get(perm) ?? [];
        // The forward pass's own tidy would free the features when it returns: keep them until used.
        list.push(tf.keep(asSamples(f)));
        into.set(perm, list);
      };
      a.forward(batches.xs[k], { onActivation: collect(featsA) });
      b.forward(batches.xs[k], { onActivation: collect(featsB) });
      for (const [perm, la] of featsA) {
        const lb = featsB.get(perm);
        if (!lb || lb.length !== la.length) continue;
        for (let i = 0; i < la.length; i++) {
          accumulate(stats, perm, la[i], lb[i]);
        }
      }
      for (const t of [...featsA.values(), ...featsB.values()].flat()) t.dispose();
    });
    opts.onProgress?.({ stage: 'activations', fraction: (k + 1) / batches.xs.length, message: `Activation matching: batch ${k + 1} of ${batches.xs.length}` });
    await new Promise<void>((r) => setImmediate(r));
  }
  return assign(spec, stats);
}

/** Adds one batch of features [samples, units] of A and B to the running sums of permutation `perm`. Call inside tf.tidy. */
function accumulate(stats: Map<string, Stats>, perm: string, za: tf.Tensor2D, zb: tf.Tensor2D): void {
  const n = za.shape[1];
  let s = stats.get(perm);
  if (!s) {
    s = { n, count: 0, sumA: new Float64Array(n), sumB: new Float64Array(n), sqA: new Float64Array(n), sqB: new Float64Array(n), cross: new Float64Array(n * n) };
    stats.set(perm, s);
  }
  // A^T B through an explicit transpose (wasm's transposed matMul is slow).
  const cross = tf.matMul(tf.transpose(za), zb).dataSync();
  const sa = tf.sum(za, 0).dataSync();
  const sb = tf.sum(zb, 0).dataSync();
  const qa = tf.sum(tf.square(za), 0).dataSync();
  const qb = tf.sum(tf.square(zb), 0).dataSync();
  for (let j = 0; j < n; j++) {
    s.sumA[j] += sa[j];
    s.sumB[j] += sb[j];
    s.sqA[j] += qa[j];
    s.sqB[j] += qb[j];
  }
  for (let j = 0; j < n * n; j++) s.cross[j] += cross[j];
  s.count += za.shape[0];
}

/** One assignment per permutation from its correlation matrix; permutations without features stay the identity. */
function assign(spec: PermSpec, stats: ReadonlyMap<string, Stats>): ActivationMatchingResult {
  const perms: Record<string, Int32Array> = {};
  const correlation: Record<string, { before: number; after: number }> = {};
  const unobserved: string[] = [];
  for (const [name, size] of Object.entries(spec.perms)) {
    const s = stats.get(name);
    if (!s) {
      perms[name] = Int32Array.from({ length: size }, (_, i) => i);
      unobserved.push(name);
      continue;
    }
    const corr = correlationMatrix(s);
    const r = solveAssignmentMax(corr, s.n);
    perms[name] = r.rowToCol;
    let before = 0;
    for (let i = 0; i < s.n; i++) before += corr[i * s.n + i];
    correlation[name] = { before: before / s.n, after: r.value / s.n };
  }
  return { perms, correlation, unobserved };
}

/** Pearson correlation of A's unit i with B's unit j; dead units (zero variance) correlate 0. */
function correlationMatrix(s: Stats): Float64Array {
  const { n, count } = s;
  const mA = Float64Array.from(s.sumA, (v) => v / count);
  const mB = Float64Array.from(s.sumB, (v) => v / count);
  const sdA = Float64Array.from(s.sqA, (v, i) => Math.sqrt(Math.max(0, v / count - mA[i] * mA[i])));
  const sdB = Float64Array.from(s.sqB, (v, i) => Math.sqrt(Math.max(0, v / count - mB[i] * mB[i])));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const cov = s.cross[i * n + j] / count - mA[i] * mB[j];
      const den = sdA[i] * sdB[j];
      out[i * n + j] = den > 1e-12 ? cov / den : 0;
    }
  }
  return out;
}

/** Activation matching from tensors: builds both models (config as for the barrier), streams `data` in batches of 500. */
export async function activationMatchingFromTensors(
  spec: PermSpec,
  a: TensorMap,
  b: TensorMap,
  config: ModelConfig,
  data: Dataset,
  opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void; batchSize?: number } = {},
): Promise<ActivationMatchingResult> {
  const ma = buildModel(a, config);
  const mb = buildModel(b, config);
  try {
    assertFeaturesFit(data.xShape.slice(1), ma.inputShape, data.source);
  } catch (e) {
    ma.dispose();
    mb.dispose();
    throw e;
  }
  const batches = toBatches(data, opts.batchSize ?? 500);
  try {
    return await activationMatching(spec, ma, mb, batches, opts);
  } finally {
    ma.dispose();
    mb.dispose();
    batches.dispose();
  }
}

/** Which spec permutation each LM feature belongs to (undefined: that feature is not permuted). */
export interface LmFeaturePerms {
  /** The residual stream's permutation: fed by the embeddings' and every block's output. */
  readonly residual?: string;
  /** Per block, its MLP hidden units' permutation. */
  readonly mlp: readonly (string | undefined)[];
}

/**
 * Activation matching for a transformer language model on token data (Git Re-Basin section 3.1
 * applied to the residual stream and the MLP hidden units): one permutation of the residual
 * stream from the correlations of A's and B's residual features over every token and every
 * layer (the embeddings' output and each block's output are samples of the same units), and one
 * per MLP from its hidden units after the activation. Attention heads are not matched here.
 */
export async function lmActivationMatching(
  spec: PermSpec,
  a: LmModel,
  b: LmModel,
  input: LmEvaluationInput,
  which: LmFeaturePerms,
  opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void; sequencesPerBatch?: number } = {},
): Promise<ActivationMatchingResult> {
  const stats = new Map<string, Stats>();
  const { n, t } = input;
  const step = Math.max(1, opts.sequencesPerBatch ?? 16);
  for (let s0 = 0; s0 < n; s0 += step) {
    throwIfCancelled(opts.signal, 'activation matching');
    const s1 = Math.min(n, s0 + step);
    tf.tidy(() => {
      const ids = tf.tensor2d(input.input.subarray(s0 * t, s1 * t), [s1 - s0, t], 'int32');
      const grab = (into: Map<string, tf.Tensor2D[]>) => ({
        residual: (_layer: number, x: tf.Tensor2D) => push(into, which.residual, x),
        mlp: (layer: number, h: tf.Tensor2D) => push(into, which.mlp[layer], h),
      });
      const fa = new Map<string, tf.Tensor2D[]>();
      const fb = new Map<string, tf.Tensor2D[]>();
      a.hidden(ids, grab(fa)).dispose();
      b.hidden(ids, grab(fb)).dispose();
      for (const [perm, la] of fa) {
        const lb = fb.get(perm) ?? [];
        la.forEach((za, i) => lb[i] && accumulate(stats, perm, za, lb[i]));
      }
      for (const x of [...fa.values(), ...fb.values()].flat()) x.dispose();
    });
    opts.onProgress?.({ stage: 'activations', fraction: s1 / n, message: `Activation matching: ${s1} of ${n} sequences` });
    await new Promise<void>((r) => setImmediate(r));
  }
  return assign(spec, stats);
}

function push(into: Map<string, tf.Tensor2D[]>, perm: string | undefined, x: tf.Tensor2D): void {
  if (!perm) return;
  const list = into.get(perm) ?? [];
  // The forward pass's own tidy would free the features when it returns: keep them until used.
  list.push(tf.keep(tf.clone(x)));
  into.set(perm, list);
}
