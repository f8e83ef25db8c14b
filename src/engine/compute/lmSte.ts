/**
 * Straight-through estimator matching of language models (Git Re-Basin §3.3, Algorithm 2) on
 * token data, for every family whose forward pass builds from `liveWeights` (GPT-2, the Llama
 * family, BERT). A free copy theta~ of B's weights is learned; each step projects it onto B's
 * permutation orbit, pi = weight matching of B onto theta~ (the spec with heads), and takes an
 * Adam step on the LM loss (next token; BERT: the seeded masked positions) of the midpoint
 * (A + pi(B)) / 2 on a batch of training windows, the gradient flowing to theta~ straight through
 * the projection (pi(B) = theta~ + stopgrad(pi(B) - theta~)), as src/engine/compute/ste.ts does
 * for MLPs. theta~ starts at A, as in the paper (started at activation matching's pi_0(B) it
 * found no better projection in 32 steps on a tiny trained GPT-2 pair, measured); activation
 * matching is the start in two ways instead: the first projection's weight matching starts from
 * pi_0, and the result is the projection with the lowest midpoint loss on a fixed set of check
 * windows among those the run visited, pi_0 included, so the refinement never returns something
 * worse there than activation matching.
 *
 * The symmetry is an `SteOrbit`: permutations (weight matching of B onto theta~, applyPermutations)
 * or the orthogonal group of a folded GPT-2 or Llama-family model (`orthogonalOrbit`: orthogonal
 * weight matching of B' onto theta~, src/core/symmetry/weightMatching.ts, from the last
 * projection; A and B are then A' and B' with folded norms). The step, loss and bookkeeping do
 * not change; orthogonal projections are continuous, so each one is scored on the check windows.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients';
import type { PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import { interpolate } from '../../core/matching/merge';
import { applyPermutations } from '../../core/matching/permute';
import { mulberry32, shuffleInPlace } from '../../core/matching/prng';
import { weightMatching } from '../../core/matching/weightMatching';
import { applyTransformerGroup, type TransformerLayout } from '../../core/symmetry';
import { orthogonalWeightMatching } from '../../core/symmetry/weightMatching';
import { throwIfCancelled } from '../errors';
import { liveWeights } from '../lm/blocks';
import type { LmConfig } from '../lm/config';
import { evaluateLm, lowerBound, type LmEvaluationInput } from '../lm/evaluate';
import { lmBytesPerSequence } from '../lm/memoryPlan';
import { buildLm } from '../lm/model';
import type { OrthogonalMatchingResult } from './orthogonalMatching';
import type { SteOptions } from './ste';
import { SteProxy } from './steProxy';

/** The classifier STE's options (`batchSize`: most sequences per step, the memory plan may allow fewer). */
export interface LmSteOptions extends Omit<SteOptions, 'activation'> {
  /** Bytes the training step's activations and gradients may take. */
  readonly budgetBytes: number;
}

export interface LmSteResult {
  readonly perms: Permutations;
  /** Midpoint loss of each step's batch. */
  readonly stepLoss: number[];
  /** Midpoint loss on the check windows: at the start (activation matching) and of the result. */
  readonly checkLoss: { readonly start: number; readonly result: number };
  /** Sequences per step. */
  readonly batch: number;
}

/** Sequences of one training step under `budgetBytes`: every block's intermediates stay on the tape, plus the scored rows' logits. */
export function lmSteBatch(config: LmConfig, t: number, budgetBytes: number, most: number): number {
  // Backward holds about as much again as forward kept.
  const perSequence = 2 * (config.layers * lmBytesPerSequence(config, t) + t * 4 * 4 * config.vocab);
  return Math.max(1, Math.min(most, Math.floor(budgetBytes / perSequence)));
}

/** Sequences `seqs` of prepared token data, in that order, with their scored rows renumbered. */
function sequencesOf(input: LmEvaluationInput, seqs: readonly number[]): { ids: Int32Array; rows: Int32Array; targets: Int32Array } {
  const { t } = input;
  const ids = new Int32Array(seqs.length * t);
  const rows: number[] = [];
  const targets: number[] = [];
  seqs.forEach((s, j) => {
    ids.set(input.input.subarray(s * t, (s + 1) * t), j * t);
    for (let r = lowerBound(input.rows, s * t, 0); r < input.rows.length && input.rows[r] < (s + 1) * t; r++) {
      rows.push(input.rows[r] - s * t + j * t);
      targets.push(input.targets[r]);
    }
  });
  return { ids, rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

function samePerms(x: Permutations, y: Permutations): boolean {
  return Object.keys(x).every((k) => x[k].every((v, i) => v === y[k][i]));
}

function minutesText(seconds: number): string {
  if (seconds < 60) return 'under a minute left';
  const m = Math.round(seconds / 60);
  return `about ${m} min left`;
}

/** The orbit the STE projects theta~ onto: the projection (from the last one), its transform of B, and whether two are the same. */
export interface SteOrbit<G> {
  project(theta: TensorMap, from: G): Promise<G>;
  apply(g: G): TensorMap;
  same(x: G, y: G): boolean;
}

export interface LmSteRun<G> extends Omit<LmSteResult, 'perms'> {
  /** The projection with the lowest midpoint loss on the check windows among those visited (the start included). */
  readonly best: G;
}

export async function lmSteMatching(spec: PermSpec, a: TensorMap, b: TensorMap, config: LmConfig, input: LmEvaluationInput, init: Permutations, opts: LmSteOptions): Promise<LmSteResult> {
  const orbit: SteOrbit<Permutations> = {
    project: async (theta, from) => (await weightMatching(spec, theta, b, { seed: opts.seed, maxIter: opts.maxIter, matmul: opts.matmul, signal: opts.signal, initPerms: from })).perms,
    apply: (perms) => applyPermutations(spec, perms, b),
    same: samePerms,
  };
  const { best, ...rest } = await lmSteRefine(a, config, input, init, orbit, opts);
  return { perms: best, ...rest };
}

/** The orthogonal group of folded B' (layout of B'): projections by orthogonal weight matching from the last one; `init` carries its maps' summaries. */
export function orthogonalOrbit(layout: TransformerLayout, bFolded: TensorMap, opts: Pick<LmSteOptions, 'maxIter' | 'matmul' | 'signal'>): SteOrbit<OrthogonalMatchingResult> {
  return {
    project: (theta, from) => orthogonalWeightMatching(layout, theta, bFolded, { maxIter: opts.maxIter, matmul: opts.matmul, signal: opts.signal, init: from.element }),
    apply: (g) => applyTransformerGroup(bFolded, layout, g.element),
    same: (x, y) => x === y,
  };
}

/** Algorithm 2 on a language model over any orbit of B (see the module comment). */
export async function lmSteRefine<G>(a: TensorMap, config: LmConfig, input: LmEvaluationInput, init: G, orbit: SteOrbit<G>, opts: LmSteOptions): Promise<LmSteRun<G>> {
  const first = orbit.apply(init);
  const names = [...a.keys()].filter((n) => first.has(n));
  const batch = lmSteBatch(config, input.t, opts.budgetBytes, Math.min(opts.batchSize, input.n));
  const steps = opts.epochs * Math.ceil(input.n / batch);
  // The check windows: the first ones, up to four batches (the same every time a projection is scored).
  const check = sequencesOf(input, Array.from({ length: Math.min(input.n, 4 * batch) }, (_, i) => i));
  const checkInput: LmEvaluationInput = { ...input, input: check.ids, n: check.ids.length / input.t, rows: check.rows, targets: check.targets };
  const midpointCheckLoss = async (piB: TensorMap): Promise<number> => {
    const model = buildLm(interpolate(a, piB, 0.5), config);
    try {
      return (await evaluateLm(model, checkInput, { budgetBytes: opts.budgetBytes, signal: opts.signal })).loss;
    } finally {
      model.dispose();
    }
  };
  const start = await midpointCheckLoss(first);
  let best = { g: init, loss: start };
  const scored: G[] = [init];

  const ste = new SteProxy(a, names, opts.learningRate);
  const rand = mulberry32(opts.seed ^ 0x57e);
  const order = Array.from({ length: input.n }, (_, i) => i);
  let g: G = init;
  const stepLoss: number[] = [];
  const began = Date.now();
  /** Projects theta~ from the last projection; scores a projection not seen before; returns pi(B). */
  const projectAndScore = async (): Promise<TensorMap> => {
    g = await orbit.project(ste.host(), g);
    const piB = orbit.apply(g);
    if (!scored.some((p) => orbit.same(p, g))) {
      scored.push(g);
      const loss = await midpointCheckLoss(piB);
      if (loss < best.loss) best = { g, loss };
    }
    return piB;
  };
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      shuffleInPlace(order, rand);
      for (let s0 = 0; s0 < input.n; s0 += batch) {
        throwIfCancelled(opts.signal, 'ste matching');
        const piB = await projectAndScore();
        const part = sequencesOf(input, order.slice(s0, s0 + batch));
        if (part.rows.length > 0) stepLoss.push(await step(part, piB));
        const done = stepLoss.length;
        const left = ((Date.now() - began) / 1000 / Math.max(1, done)) * (steps - done);
        const last = stepLoss[stepLoss.length - 1];
        opts.onProgress?.({
          stage: 'ste',
          fraction: done / steps,
          iteration: done,
          objective: last,
          message: `STE: step ${done} of ${steps}, midpoint loss ${last?.toFixed(2) ?? '-'}, ${minutesText(left)}`,
        });
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    throwIfCancelled(opts.signal, 'ste matching');
    await projectAndScore();
    return { best: best.g, stepLoss, checkLoss: { start, result: best.loss }, batch };
  } finally {
    ste.dispose();
  }

  /** One Adam step on theta~ from the midpoint loss of `part`; returns that loss. */
  async function step(part: { ids: Int32Array; rows: Int32Array; targets: Int32Array }, piB: TensorMap): Promise<number> {
    const m = part.ids.length / input.t;
    const loss = tf.tidy(() => {
      const offsets = ste.offsets(piB);
      const ids = tf.tensor2d(part.ids, [m, input.t], 'int32');
      const local = tf.tensor1d(part.rows, 'int32');
      const target = tf.oneHot(tf.tensor1d(part.targets, 'int32'), config.vocab);
      return ste.minimize(() => {
        const mid = new Map(names.map((n) => [n, ste.midpoint(n, offsets)]));
        const model = buildLm(liveWeights(mid), config, 'the interpolated model');
        const logits = model.head(tf.gather(model.hidden(ids), local, 0) as tf.Tensor2D);
        return tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), target))), part.rows.length) as tf.Scalar;
      });
    });
    const v = (await loss.data())[0];
    loss.dispose();
    return v;
  }
}
