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

/**
 * B against pi(B) through the LM forward pass of `config`'s family (the pass that reproduces
 * `transformers`' logits) on seeded random token ids. `config` is the checkpoint's config.json,
 * or built from the weights' shapes and the model config (core/families/lmShapes.ts); then the
 * output is whichever head the weights hold, and where it is the residual stream (a headless
 * BERT's hidden states) B's outputs are gathered by the stream permutation of `aligned` first.
 */
export function checkLmEquivalence(b: TensorMap, piB: TensorMap, config: LmConfig, seed = 0, aligned?: { spec: PermSpec; perms: Permutations }): TransformerEquivalence {
  const build = (t: TensorMap): CheckedModel => {
    const m: LmModel = buildLm(t, config);
    const forward = (x: tf.Tensor2D): tf.Tensor => m.output(x);
    const forwardB = aligned ? alignedOutput(m, aligned.spec, aligned.perms) : forward;
    return { description: m.description, vocab: config.vocab, maxPositions: config.maxPositions, forwardB, forward, dispose: () => m.dispose() };
  };
  return checkOneAtATime(b, piB, build, config.family, seed);
}

/**
 * A checkpoint against its reparameterisation (folded norms, an orthogonal map: same outputs,
 * other weights) through the LM forward pass, each under its own config (a folded tied head is
 * untied: `tied` differs).
 */
export function checkLmReparameterised(b: TensorMap, config: LmConfig, bPrime: TensorMap, configPrime: LmConfig, seed = 0): TransformerEquivalence {
  const build = (t: TensorMap): CheckedModel => {
    const c = t === b ? config : configPrime;
    const m: LmModel = buildLm(t, c);
    const forward = (x: tf.Tensor2D): tf.Tensor => m.output(x);
    return { description: m.description, vocab: c.vocab, maxPositions: c.maxPositions, forwardB: forward, forward, dispose: () => m.dispose() };
  };
  return checkOneAtATime(b, bPrime, build, config.family, seed);
}

/** B's output, its last axis gathered by the stream permutation when the output is the stream. */
function alignedOutput(m: LmModel, spec: PermSpec, perms: Permutations): (x: tf.Tensor2D) => tf.Tensor {
  const name = m.outputAxis ? spec.axes[m.outputAxis.tensor]?.[m.outputAxis.axis] : null;
  const perm = typeof name === 'string' ? perms[name] : undefined;
  if (!perm) return (x) => m.output(x);
  // pi(B)'s unit i is B's unit perm[i] (permutations gather: out[i] = in[perm[i]]).
  return (x) => {
    const y = m.output(x);
    return tf.gather(y, tf.tensor1d(perm, 'int32'), y.rank - 1);
  };
}
