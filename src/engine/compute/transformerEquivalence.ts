/**
 * The functional-equivalence check (paper section 2) for transformers: B and pi(B) run on the
 * same seeded random token ids and their outputs are compared like logits. When the output is
 * the final hidden states (a BERT without a head), its width is the residual stream, so B's
 * outputs are gathered by the stream permutation before the comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import { mulberry32 } from '../../core/matching/prng';
import type { EquivalenceReport } from '../protocol';
import { checkEquivalence, type EquivalenceBatch } from './equivalence';
import type { ModelConfig } from './modelConfig';
import { buildTransformer, type TransformerModel } from './transformer';
import { transformerOptions } from './transformerConfig';
import type { LmConfig } from '../lm/config';
import { buildLm, type LmModel } from '../lm/model';

/** Sequences and tokens per sequence fed to both models. */
export const TRANSFORMER_BATCH = { sequences: 4, tokens: 16 } as const;

/** Seeded uniform token ids int32 [n, s] in [0, vocab). */
export function tokenBatch(vocab: number, n: number, s: number, seed = 0): EquivalenceBatch {
  const rand = mulberry32(seed);
  const ids = Int32Array.from({ length: n * s }, () => Math.min(vocab - 1, Math.floor(rand() * vocab)));
  return { x: tf.tensor2d(ids, [n, s], 'int32'), kind: 'random' };
}

export interface TransformerEquivalence {
  readonly report: EquivalenceReport;
  /** The forward pass that ran (kind, sizes, head count and where it came from, output). */
  readonly description: string;
}

/** A built model as the check needs it: its words, its token limits, B's and pi(B)'s forward. */
interface CheckedModel {
  readonly description: string;
  readonly vocab: number;
  readonly maxPositions?: number;
  /** The output compared for B (gathered by the stream permutation where it is the stream). */
  forwardB(x: tf.Tensor2D): tf.Tensor;
  forward(x: tf.Tensor2D): tf.Tensor;
  dispose(): void;
}

/**
 * Builds B and pi(B) with `build` and compares them on seeded random tokens. One model is on the
 * backend at a time: B's outputs are kept, B is freed, then pi(B) is built (a transformer's
 * weights dominate memory).
 */
function checkOneAtATime(b: TensorMap, piB: TensorMap, build: (t: TensorMap) => CheckedModel, family: string, seed: number): TransformerEquivalence {
  let model: CheckedModel | undefined;
  let batch: EquivalenceBatch | undefined;
  let outB: tf.Tensor | undefined;
  try {
    model = build(b);
    const description = model.description;
    const s = Math.min(TRANSFORMER_BATCH.tokens, model.maxPositions ?? TRANSFORMER_BATCH.tokens);
    batch = tokenBatch(model.vocab, TRANSFORMER_BATCH.sequences, s, seed);
    const mb = model;
    const x = batch.x as tf.Tensor2D;
    outB = tf.tidy(() => mb.forwardB(x));
    model.dispose();
    model = build(piB);
    const mp = model;
    const kept = outB;
    const report = checkEquivalence(() => kept, (ids) => mp.forward(ids as tf.Tensor2D), batch, family);
    return { report, description };
  } finally {
    model?.dispose();
    outB?.dispose();
    batch?.x.dispose();
  }
}

/** B against pi(B) through the token-id forward pass of compute/transformer.ts (config as for the other families, plus `heads` etc.). */
export function checkTransformerEquivalence(b: TensorMap, piB: TensorMap, spec: PermSpec, perms: Permutations, config: ModelConfig, seed = 0): TransformerEquivalence {
  const opts = transformerOptions(config);
  const build = (t: TensorMap): CheckedModel => {
    const m = buildTransformer(t, opts);
    const forwardB = alignedOutput(m, spec, perms);
    return { description: m.description, vocab: m.vocab, maxPositions: m.maxPositions, forwardB, forward: (x) => m.forward(x), dispose: () => m.dispose() };
  };
  return checkOneAtATime(b, piB, build, 'transformer', seed);
}

/** B's forward, its last axis gathered by the stream permutation when the output is the stream. */
function alignedOutput(m: TransformerModel, spec: PermSpec, perms: Permutations): (x: tf.Tensor) => tf.Tensor {
  const name = m.outputAxis ? spec.axes[m.outputAxis.tensor]?.[m.outputAxis.axis] : null;
  const perm = typeof name === 'string' ? perms[name] : undefined;
  if (!perm) return (x) => m.forward(x as tf.Tensor2D);
  // pi(B)'s unit i is B's unit perm[i] (permutations gather: out[i] = in[perm[i]]).
  return (x) => {
    const y = m.forward(x as tf.Tensor2D);
    return tf.gather(y, tf.tensor1d(perm, 'int32'), y.rank - 1);
  };
}

/**
 * The check for a Hugging Face checkpoint: B and pi(B) through the LM forward pass its
 * config.json describes (the pass that reproduces `transformers`' logits: heads, KV groups,
 * RoPE) on seeded random token ids; the outputs are logits over the vocabulary, never permuted.
 */
export function checkLmEquivalence(b: TensorMap, piB: TensorMap, config: LmConfig, seed = 0): TransformerEquivalence {
  const build = (t: TensorMap): CheckedModel => {
    const m: LmModel = buildLm(t, config);
    const forward = (x: tf.Tensor2D): tf.Tensor => m.logits(x);
    return { description: m.description, vocab: config.vocab, maxPositions: config.maxPositions, forwardB: forward, forward, dispose: () => m.dispose() };
  };
  return checkOneAtATime(b, piB, build, config.family, seed);
}
