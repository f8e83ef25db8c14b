/**
 * Activation matching under the generalized (orthogonal) symmetry of a folded pre-norm
 * transformer (GPT-2, Llama family, Mixtral, ViT; src/core/symmetry/transformerGroup.ts): A' and
 * B' run on the same data (token ids for language models, images for ViT: OrthogonalFeaturePass)
 * and only cross-correlations are kept (float64 running sums). Then
 * - the residual stream: Procrustes on X_B^T X_A summed over the points of the stream the pass
 *   reports (for language models, between blocks), each row as the next normalisation reads it
 *   (asNormRead) so that every point counts alike (LayerNorm: fixing the all-ones direction,
 *   procrustesFixing);
 * - heads: every (head of B, head of A) block of the q, k, v cross-correlations is kept; B's
 *   key/value heads are matched to A's by linear assignment on the Procrustes objective their QK
 *   and VO maps would reach, their query heads within each matched group likewise (matchHeads);
 * - per key/value head (after matching), query/key: Procrustes on sum_h Q_B,h^T Q_A,h + K_B^T K_A (its query heads
 *   and its key); under rotary positions the map is restricted to a 2 x 2 rotation per frequency
 *   pair (the maps that commute with every position), fitted in closed form per pair;
 * - per key/value head, value/output: Procrustes on V_B^T V_A;
 * - MLP units: a permutation, by the correlation of the hidden units (linear assignment), as
 *   activation matching does; a mixture's experts as wholes first, their units within.
 * Every feature of B is invariant under the group except by the map itself, so one pass over the
 * data gives every map at once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Progress } from '../../core/checkpoint';
import { procrustes, procrustesFixing } from '../../core/linalg';
import type { TransformerGroupElement, TransformerLayout } from '../../core/symmetry';
import { mapSummary, matchHeads, rotaryProcrustes, type OrthogonalMapSummary } from '../../core/symmetry/mapFitting';
import { unitAssignment } from '../../core/symmetry/unitAssignment';
import { throwIfCancelled } from '../errors';
import type { Dataset } from '../../core/data';
import type { LmModel } from '../lm/layers';
import type { LmEvaluationInput } from '../lm/evaluate';
import type { Model } from './model';
import { accumulate, correlationMatrix, type Stats } from './activationMatching';

export { procrustesObjective, rotaryProcrustes, type OrthogonalMapSummary } from '../../core/symmetry/mapFitting';

export interface OrthogonalMatchingResult {
  /** The element g with g . B' ~ A' (B' folded). */
  readonly element: Required<TransformerGroupElement>;
  readonly residual: OrthogonalMapSummary;
  /** [layer][kvHead]. */
  readonly qk: OrthogonalMapSummary[][];
  readonly vo: OrthogonalMapSummary[][];
}

/** Guards the division of a (near) zero row of the stream; LayerNorm's usual epsilon. */
const NORM_EPS = 1e-5;

/** Examples (sequences, images) per forward batch (the sums, not the features, are kept). */
const EXAMPLES_PER_BATCH = 8;

/** One batch's features of one model as 2-D rows (tokens or patches x features), kept past the pass's tidy. */
export interface OrthogonalFeatures {
  /** Points of the residual stream, rows [samples, hidden]. */
  readonly residual: tf.Tensor2D[];
  /** [layer]: q, k, v as their weights' outputs. */
  readonly attention: [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D][];
  /** [layer]: the MLP units (a mixture: every expert's, stacked expert after expert). */
  readonly mlp: tf.Tensor2D[];
}

/** Where the features come from: the family's forward pass on its kind of data (token ids, images). */
export interface OrthogonalFeaturePass {
  /** Examples in the data, and what they are called in progress ("sequences", "images"). */
  readonly count: number;
  readonly noun: string;
  /** The features of examples [s0, s1) through A' or B' (the caller disposes them). */
  capture(side: 'a' | 'b', s0: number, s1: number): OrthogonalFeatures;
}

/** Language models: the LM forward pass on token ids (residual, attention and MLP or experts' hooks). */
export function lmFeaturePass(a: LmModel, b: LmModel, input: LmEvaluationInput): OrthogonalFeaturePass {
  const { n, t } = input;
  return {
    count: n,
    noun: 'sequences',
    capture: (side, s0, s1) => {
      let c: OrthogonalFeatures | undefined;
      tf.tidy(() => {
        c = captureLm(side === 'a' ? a : b, tf.tensor2d(input.input.subarray(s0 * t, s1 * t), [s1 - s0, t], 'int32'));
      });
      return c!;
    },
  };
}

/**
 * Classifiers (ViT): the family's forward pass on images; its activations are keyed by the
 * weight that writes them (compute/layers.ts ForwardOptions): the stream by the input writer
 * (the patch projection), q/k/v by their weights, the MLP units by the first MLP layer's.
 */
export function classifierFeaturePass(layout: TransformerLayout, a: Model, b: Model, data: Dataset): OrthogonalFeaturePass {
  const stream = layout.inputWriters?.[0]?.weight;
  // q, k, v (their slot in `attention`) and the MLP's hidden units, by the weight that writes them.
  const roles = new Map<string, { layer: number; slot: 0 | 1 | 2 | 'units' }>();
  layout.blocks.forEach((blk, layer) => {
    roles.set(blk.q.layer.weight, { layer, slot: 0 });
    roles.set(blk.k.layer.weight, { layer, slot: 1 });
    roles.set(blk.v.layer.weight, { layer, slot: 2 });
    roles.set(blk.mlpIn[0].weight, { layer, slot: 'units' });
  });
  const per = data.xShape.slice(1);
  const stride = per.reduce((x, y) => x * y, 1);
  return {
    count: data.n,
    noun: 'images',
    capture: (side, s0, s1) => {
      const c: OrthogonalFeatures = { residual: [], attention: layout.blocks.map(() => [] as unknown as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D]), mlp: [] };
      tf.tidy(() => {
        const x = tf.tensor(data.x.subarray(s0 * stride, s1 * stride), [s1 - s0, ...per]);
        (side === 'a' ? a : b).forward(x, {
          onActivation: (name, t, axis) => {
            if ((axis ?? 0) !== 0) return;
            const rows = own(tf.reshape(t, [-1, t.shape[t.shape.length - 1]]) as tf.Tensor2D);
            if (name === stream) return void c.residual.push(rows);
            const r = roles.get(name);
            if (!r) return void rows.dispose();
            if (r.slot === 'units') c.mlp[r.layer] = rows;
            else c.attention[r.layer][r.slot] = rows;
          },
        });
      });
      return c;
    },
  };
}

export async function orthogonalActivationMatching(
  layout: TransformerLayout,
  a: LmModel,
  b: LmModel,
  input: LmEvaluationInput,
  opts: { readonly signal?: AbortSignal; readonly onProgress?: (p: Progress) => void } = {},
): Promise<OrthogonalMatchingResult> {
  return orthogonalMatchingOn(layout, lmFeaturePass(a, b, input), opts);
}

/** Activation matching under the orthogonal symmetry on the features `pass` gives (see the module comment). */
export async function orthogonalMatchingOn(
  layout: TransformerLayout,
  pass: OrthogonalFeaturePass,
  opts: { readonly signal?: AbortSignal; readonly onProgress?: (p: Progress) => void } = {},
): Promise<OrthogonalMatchingResult> {
  const { hidden: d, headDim: hd, heads, kvHeads } = layout;
  const layers = layout.blocks.length;
  const perGroup = heads / kvHeads;
  const residual = new Float64Array(d * d);
  // Full cross-correlations Q_B^T Q_A, K_B^T K_A, V_B^T V_A per layer: every (head of B, head of A)
  // block, so heads can be matched before the maps are fitted.
  const [qd, kvd] = [heads * hd, kvHeads * hd];
  const qCross = layout.blocks.map(() => new Float64Array(qd * qd));
  const kCross = layout.blocks.map(() => new Float64Array(kvd * kvd));
  const vCross = layout.blocks.map(() => new Float64Array(kvd * kvd));
  const mlp = new Map<string, Stats>();
  const n = pass.count;
  for (let s0 = 0; s0 < n; s0 += EXAMPLES_PER_BATCH) {
    throwIfCancelled(opts.signal, 'activation matching');
    const s1 = Math.min(n, s0 + EXAMPLES_PER_BATCH);
    const fa = pass.capture('a', s0, s1);
    const fb = pass.capture('b', s0, s1);
    try {
      tf.tidy(() => {
        if (fa.residual.length !== fb.residual.length || fa.residual.length === 0) throw new RangeError(`the forward pass reported ${fa.residual.length} and ${fb.residual.length} points of the residual stream`);
        fa.residual.forEach((xa, i) => addCross(residual, asNormRead(fb.residual[i], layout.centered), asNormRead(xa, layout.centered)));
        for (let l = 0; l < layers; l++) {
          const [qa, ka, va] = fa.attention[l];
          const [qb, kb, vb] = fb.attention[l];
          addCross(qCross[l], qb, qa);
          addCross(kCross[l], kb, ka);
          addCross(vCross[l], vb, va);
          accumulate(mlp, `mlp.${l}`, fa.mlp[l], fb.mlp[l]);
        }
      });
    } finally {
      for (const x of [...kept(fa), ...kept(fb)]) x.dispose();
    }
    opts.onProgress?.({ stage: 'activations', fraction: s1 / n, message: `Activation matching (orthogonal): ${s1} of ${n} ${pass.noun}` });
    await new Promise<void>((r) => setImmediate(r));
  }
  const unit = new Float64Array(d).fill(1 / Math.sqrt(d));
  const r = layout.centered ? procrustesFixing(residual, d, unit) : procrustes(residual, d);
  const qkFit = (m: Float64Array) => (layout.rotary ? rotaryProcrustes(m, hd) : procrustes(m, hd));
  const matched = layout.blocks.map((_, l) => matchHeads({ q: qCross[l], k: kCross[l], v: vCross[l] }, { heads, kvHeads, hd, perGroup }, qkFit));
  const qkMaps = matched.map((m) => m.qk.map((x) => qkFit(x)));
  const voMaps = matched.map((m) => m.vo.map((x) => procrustes(x, hd)));
  const unitPerms = layout.blocks.map((blk, l) => unitPermutation(mlp.get(`mlp.${l}`), blk.mlpWidth, blk.experts?.count ?? 1));
  return {
    element: { residual: r, heads: matched.map((m) => m.heads), qk: qkMaps, vo: voMaps, mlp: unitPerms },
    residual: mapSummary(r, residual, d),
    qk: qkMaps.map((row, l) => row.map((m, j) => mapSummary(m, matched[l].qk[j], hd, matched[l].qkSame[j]))),
    vo: voMaps.map((row, l) => row.map((m, j) => mapSummary(m, matched[l].vo[j], hd, matched[l].voSame[j]))),
  };
}

interface Captured {
  readonly residual: tf.Tensor2D[];
  /** [layer]: q, k, v. */
  readonly attention: [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D][];
  readonly mlp: tf.Tensor2D[];
}

/** A clone kept past the pass's tidy (the pass frees some features itself: a tf.keep alone does not survive an explicit dispose). */
function own(x: tf.Tensor2D): tf.Tensor2D {
  return tf.keep(tf.clone(x));
}

/** The LM's features of one batch (a mixture's experts stand for its MLP units). */
function captureLm(model: LmModel, ids: tf.Tensor2D): OrthogonalFeatures {
  const c: OrthogonalFeatures = { residual: [], attention: [], mlp: [] };
  model
    .hidden(ids, {
      // The stream between blocks (after the embeddings and each block), not after attention
      // within a block: measured better on trained GPT-2 pairs (docs/transformers.md).
      residual: (l, x) => Number.isInteger(l) && c.residual.push(own(x)),
      attention: (l, f) => (c.attention[l] = [own(f.q), own(f.k), own(f.v)]),
      mlp: (l, h) => (c.mlp[l] = own(h)),
      experts: (l, h) => (c.mlp[l] = own(h)),
    })
    .dispose();
  return c;
}

function kept(c: OrthogonalFeatures): tf.Tensor2D[] {
  return [...c.residual, ...c.attention.flat(), ...c.mlp];
}

function slice(x: tf.Tensor2D, head: number, hd: number): tf.Tensor2D {
  return tf.slice(x, [0, head * hd], [-1, hd]);
}

/**
 * The rows as the next normalisation reads them, gains folded: centred (LayerNorm) and divided by
 * their root mean square. Measured on trained GPT-2 pairs (docs/transformers.md): raw rows let the
 * late, large points of the stream outweigh the embeddings, whose map matters most.
 */
function asNormRead(x: tf.Tensor2D, centered: boolean): tf.Tensor2D {
  const c = centered ? tf.sub(x, tf.mean(x, 1, true)) : x;
  return tf.div(c, tf.sqrt(tf.add(tf.mean(tf.square(c), 1, true), NORM_EPS)));
}

/** into += X_B^T X_A. */
function addCross(into: Float64Array, xb: tf.Tensor2D, xa: tf.Tensor2D): void {
  // Through an explicit transpose (wasm's transposed matMul is slow).
  const m = tf.matMul(tf.transpose(xb), xa).dataSync();
  for (let i = 0; i < m.length; i++) into[i] += m[i];
}

/** B's unit perm[j] becomes unit j: the assignment maximising the summed correlation with A's units (a mixture's experts as wholes: unitAssignment). */
function unitPermutation(s: Stats | undefined, n: number, experts: number): number[] {
  if (!s) return Array.from({ length: n }, (_, i) => i);
  return unitAssignment(correlationMatrix(s), n, experts).perm;
}
