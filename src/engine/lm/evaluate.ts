/**
 * Language-model loss, accuracy and perplexity of a model on token data.
 * - Causal LMs (GPT-2, Llama family): loss = mean next-token cross-entropy over all N x (T - 1)
 *   positions (position p of a sequence predicts its token p + 1), accuracy = how often the
 *   top-1 logit is that next token, perplexity = exp(loss).
 * - BERT: the same at the positions of a seeded 15% mask (core/data/tokensMask.ts), predicting
 *   the original token from the corrupted input.
 * The scored positions and targets are prepared once (`prepareLmEvaluation`) and reused for
 * every model of a barrier path (`evaluateLmAt`), in batches planned by memoryPlan.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Progress, TensorMap } from '../../core/checkpoint';
import { DataError, loadTokenData, loadTokenizer, maskTokens, type TokenData, type TokenDataOptions } from '../../core/data';
import { interpolate } from '../../core/matching/merge';
import { throwIfCancelled } from '../errors';
import { loadLmCheckpoint } from './checkpoint';
import type { LmConfig } from './config';
import type { LmFeatureHooks, LmModel } from './layers';
import { planLmBatches } from './memoryPlan';
import { buildLm } from './model';

/** Token data made ready for one objective: model inputs, scored positions, their targets. */
export interface LmEvaluationInput {
  readonly objective: 'causal' | 'masked';
  /** Model inputs [n, t] (for masked LM: the corrupted ids). */
  readonly input: Int32Array;
  readonly n: number;
  readonly t: number;
  /** Flat indices (sequence * t + position) of the rows scored, increasing. */
  readonly rows: Int32Array;
  /** The token each scored row should predict. */
  readonly targets: Int32Array;
  readonly source: string;
}

export interface MaskedLmOptions {
  /** Seed of the mask (default 0). */
  readonly seed?: number;
  /** Mask token id; default: the tokenizer's [MASK] / <mask>. */
  readonly maskId?: number;
  /** Ids never masked; default: the tokenizer's special tokens. */
  readonly specialIds?: ReadonlySet<number>;
}

/** Scored rows and targets for `config`'s objective. */
export function prepareLmEvaluation(config: LmConfig, data: TokenData, masked: MaskedLmOptions = {}): LmEvaluationInput {
  const { n, t, ids, source } = data;
  if (config.objective === 'causal') {
    if (t < 2) throw new DataError('BadShape', `${source}: next-token loss needs sequences of at least 2 tokens, got ${t}`, source);
    const rows = new Int32Array(n * (t - 1));
    const targets = new Int32Array(n * (t - 1));
    let k = 0;
    for (let s = 0; s < n; s++) {
      for (let p = 0; p < t - 1; p++) {
        rows[k] = s * t + p;
        targets[k++] = ids[s * t + p + 1];
      }
    }
    return { objective: 'causal', input: ids, n, t, rows, targets, source };
  }
  const maskId = masked.maskId ?? data.tokenizer?.maskId;
  if (maskId === undefined) {
    throw new DataError('NotFound', `${source}: the masked-LM loss needs a mask token: the tokenizer has no [MASK] or <mask> (add one to tokenizer.json's added_tokens, or give the mask token id)`, source);
  }
  if (!Number.isInteger(maskId) || maskId < 0 || maskId >= config.vocab) {
    throw new DataError('LabelOutOfRange', `${source}: mask token id ${maskId} is not below the vocabulary size ${config.vocab}`, source);
  }
  const m = maskTokens(ids, { maskId, vocab: config.vocab, seed: masked.seed ?? 0, specialIds: masked.specialIds ?? data.tokenizer?.specialIds }, source);
  return { objective: 'masked', input: m.input, n, t, rows: m.positions, targets: m.targets, source };
}

export interface LmMetrics {
  /** Mean cross-entropy (nats) over the scored positions. */
  readonly loss: number;
  /** Fraction of scored positions whose top-1 prediction is the target. */
  readonly accuracy: number;
  /** exp(loss). */
  readonly perplexity: number;
  /** Scored positions. */
  readonly positions: number;
  readonly sequences: number;
}

export interface LmEvaluateOptions {
  /** Activation memory budget in bytes (memoryPlan.ts). */
  readonly budgetBytes?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /**
   * Hooks given to every batch's forward pass, batches in order from the first sequence (REPAIR
   * corrects its sites in the evaluation's own pass with them: repair.ts `evaluateRepairedLm`).
   */
  readonly features?: LmFeatureHooks;
}

/** Loss, accuracy and perplexity of `model` on prepared token data. */
export async function evaluateLm(model: LmModel, input: LmEvaluationInput, opts: LmEvaluateOptions = {}): Promise<LmMetrics> {
  const { n, t, rows, targets } = input;
  const plan = planLmBatches(model.config, t, opts.budgetBytes);
  const vocab = model.config.vocab;
  let lossSum = 0;
  let correct = 0;
  let r = 0; // next scored row
  for (let s0 = 0; s0 < n; s0 += plan.sequences) {
    throwIfCancelled(opts.signal, 'language-model evaluation');
    const s1 = Math.min(n, s0 + plan.sequences);
    const rEnd = lowerBound(rows, s1 * t, r);
    if (rEnd > r) {
      const ids = tf.tensor2d(input.input.subarray(s0 * t, s1 * t), [s1 - s0, t], 'int32');
      let hidden: tf.Tensor2D | undefined;
      try {
        hidden = model.hidden(ids, opts.features);
        for (let c0 = r; c0 < rEnd; c0 += plan.headRows) {
          const c1 = Math.min(rEnd, c0 + plan.headRows);
          const h = hidden;
          const [l, k] = tf.tidy(() => {
            const local = tf.tensor1d(Int32Array.from(rows.subarray(c0, c1), (i) => i - s0 * t), 'int32');
            const target = targets.subarray(c0, c1);
            const logits = model.head(tf.gather(h, local, 0) as tf.Tensor2D);
            const logp = tf.logSoftmax(logits);
            const flat = tf.tensor1d(Int32Array.from(target, (v, j) => j * vocab + v), 'int32');
            const picked = tf.gather(tf.reshape(logp, [-1]), flat);
            const hits = tf.equal(tf.argMax(logits, 1), tf.tensor1d(target, 'int32'));
            return [tf.neg(tf.sum(picked)), tf.sum(tf.cast(hits, 'float32'))];
          });
          const [lv, kv] = await Promise.all([l.data(), k.data()]);
          l.dispose();
          k.dispose();
          lossSum += lv[0];
          correct += kv[0];
        }
      } finally {
        hidden?.dispose();
        ids.dispose();
      }
    }
    r = rEnd;
    opts.onProgress?.({ stage: 'evaluate', fraction: s1 / n, message: `Language-model loss: ${s1} of ${n} sequences` });
  }
  const positions = rows.length;
  const loss = lossSum / positions;
  return { loss, accuracy: correct / positions, perplexity: Math.exp(loss), positions, sequences: n };
}

/** First index i >= from with rows[i] >= value (rows increasing). */
export function lowerBound(rows: Int32Array, value: number, from: number): number {
  let lo = from;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Metrics of the weights `tensors` (a checkpoint, an interpolation, a permuted copy) under `config`. */
export async function evaluateLmWeights(tensors: TensorMap, config: LmConfig, input: LmEvaluationInput, opts: LmEvaluateOptions = {}): Promise<LmMetrics> {
  const model = buildLm(tensors, config);
  try {
    return await evaluateLm(model, input, opts);
  } finally {
    model.dispose();
  }
}

/** Metrics of (1 - lambda) * A + lambda * B: one point of a barrier curve. */
export function evaluateLmAt(a: TensorMap, b: TensorMap, lambda: number, config: LmConfig, input: LmEvaluationInput, opts: LmEvaluateOptions = {}): Promise<LmMetrics> {
  return evaluateLmWeights(interpolate(a, b, lambda), config, input, opts);
}

export interface LmCheckpointEvaluation extends LmMetrics {
  readonly objective: 'causal' | 'masked';
  /** The forward pass (family, sizes, choices) and the data read, one line each. */
  readonly model: string;
  readonly data: string;
}

/**
 * Evaluates a Hugging Face checkpoint (folder, weights file or shard index) on token data; raw
 * text uses the tokenizer.json beside the checkpoint unless `data.tokenizer` names one.
 */
export async function evaluateLmCheckpoint(checkpoint: string, data: Omit<TokenDataOptions, 'tokenizer'> & { readonly tokenizer?: string }, opts: LmEvaluateOptions & { readonly masked?: MaskedLmOptions } = {}): Promise<LmCheckpointEvaluation> {
  const lm = await loadLmCheckpoint(checkpoint);
  const tokenizerPath = data.tokenizer ?? lm.paths.tokenizer;
  const tokens = await loadTokenData({ ...data, tokenizer: tokenizerPath }, { vocab: lm.config.vocab, maxPositions: lm.config.maxPositions, source: lm.paths.config });
  // Token arrays carry no tokenizer: a masked LM still takes its mask and special ids from the checkpoint's.
  const withTokenizer = lm.config.objective === 'masked' && !tokens.tokenizer && tokenizerPath ? { ...tokens, tokenizer: await loadTokenizer(tokenizerPath) } : tokens;
  const input = prepareLmEvaluation(lm.config, withTokenizer, opts.masked);
  const model = buildLm(lm.tensors, lm.config, lm.paths.weights);
  try {
    const m = await evaluateLm(model, input, opts);
    return { ...m, objective: input.objective, model: model.description, data: tokens.description };
  } finally {
    model.dispose();
  }
}
