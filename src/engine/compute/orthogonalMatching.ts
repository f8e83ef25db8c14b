/**
 * Activation matching under the generalized (orthogonal) symmetry of a folded GPT-2 or
 * Llama-family transformer (src/core/symmetry/transformerGroup.ts): A' and B' run on the same
 * tokens and only cross-correlations are kept (float64 running sums). Then
 * - the residual stream: Procrustes on X_B^T X_A summed over every point of the stream the pass
 *   reports (LayerNorm: fixing the all-ones direction, procrustesFixing);
 * - heads: every (head of B, head of A) block of the q, k, v cross-correlations is kept; B's
 *   key/value heads are matched to A's by linear assignment on the Procrustes objective their QK
 *   and VO maps would reach, their query heads within each matched group likewise (matchHeads);
 * - per key/value head (after matching), query/key: Procrustes on sum_h Q_B,h^T Q_A,h + K_B^T K_A (its query heads
 *   and its key); under rotary positions the map is restricted to a 2 x 2 rotation per frequency
 *   pair (the maps that commute with every position), fitted in closed form per pair;
 * - per key/value head, value/output: Procrustes on V_B^T V_A;
 * - MLP units: a permutation, by the correlation of the hidden units (linear assignment), as
 *   activation matching does.
 * Every feature of B is invariant under the group except by the map itself, so one pass over the
 * data gives every map at once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Progress } from '../../core/checkpoint';
import { solveAssignmentMax } from '../../core/assignment/lap';
import { procrustes, procrustesFixing } from '../../core/linalg';
import type { TransformerGroupElement, TransformerLayout } from '../../core/symmetry';
import { mapSummary, matchHeads, rotaryProcrustes, type OrthogonalMapSummary } from '../../core/symmetry/mapFitting';
import { throwIfCancelled } from '../errors';
import type { LmModel } from '../lm/layers';
import type { LmEvaluationInput } from '../lm/evaluate';
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

/** Sequences per forward batch (the sums, not the features, are kept). */
const SEQUENCES_PER_BATCH = 8;

export async function orthogonalActivationMatching(
  layout: TransformerLayout,
  a: LmModel,
  b: LmModel,
  input: LmEvaluationInput,
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
  const { n, t } = input;
  for (let s0 = 0; s0 < n; s0 += SEQUENCES_PER_BATCH) {
    throwIfCancelled(opts.signal, 'activation matching');
    const s1 = Math.min(n, s0 + SEQUENCES_PER_BATCH);
    tf.tidy(() => {
      const ids = tf.tensor2d(input.input.subarray(s0 * t, s1 * t), [s1 - s0, t], 'int32');
      const fa = capture(a, ids);
      const fb = capture(b, ids);
      fa.residual.forEach((xa, i) => addCross(residual, fb.residual[i], xa));
      for (let l = 0; l < layers; l++) {
        const [qa, ka, va] = fa.attention[l];
        const [qb, kb, vb] = fb.attention[l];
        addCross(qCross[l], qb, qa);
        addCross(kCross[l], kb, ka);
        addCross(vCross[l], vb, va);
        accumulate(mlp, `mlp.${l}`, fa.mlp[l], fb.mlp[l]);
      }
      for (const x of [...kept(fa), ...kept(fb)]) x.dispose();
    });
    opts.onProgress?.({ stage: 'activations', fraction: s1 / n, message: `Activation matching (orthogonal): ${s1} of ${n} sequences` });
    await new Promise<void>((r) => setImmediate(r));
  }
  const unit = new Float64Array(d).fill(1 / Math.sqrt(d));
  const r = layout.centered ? procrustesFixing(residual, d, unit) : procrustes(residual, d);
  const qkFit = (m: Float64Array) => (layout.rotary ? rotaryProcrustes(m, hd) : procrustes(m, hd));
  const matched = layout.blocks.map((_, l) => matchHeads({ q: qCross[l], k: kCross[l], v: vCross[l] }, { heads, kvHeads, hd, perGroup }, qkFit));
  const qkMaps = matched.map((m) => m.qk.map((x) => qkFit(x)));
  const voMaps = matched.map((m) => m.vo.map((x) => procrustes(x, hd)));
  return {
    element: { residual: r, heads: matched.map((m) => m.heads), qk: qkMaps, vo: voMaps, mlp: layout.blocks.map((blk, l) => unitPermutation(mlp.get(`mlp.${l}`), blk.mlpWidth)) },
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

/** The features of one batch, kept past the forward pass's tidy (the caller disposes them: `kept`). */
function capture(model: LmModel, ids: tf.Tensor2D): Captured {
  const c: Captured = { residual: [], attention: [], mlp: [] };
  // A clone: the pass frees some features itself (a tf.keep alone does not survive an explicit dispose).
  const own = (x: tf.Tensor2D): tf.Tensor2D => tf.keep(tf.clone(x));
  model
    .hidden(ids, {
      residual: (_l, x) => c.residual.push(own(x)),
      attention: (l, f) => (c.attention[l] = [own(f.q), own(f.k), own(f.v)]),
      mlp: (l, h) => (c.mlp[l] = own(h)),
    })
    .dispose();
  return c;
}

function kept(c: Captured): tf.Tensor2D[] {
  return [...c.residual, ...c.attention.flat(), ...c.mlp];
}

function slice(x: tf.Tensor2D, head: number, hd: number): tf.Tensor2D {
  return tf.slice(x, [0, head * hd], [-1, hd]);
}

/** into += X_B^T X_A. */
function addCross(into: Float64Array, xb: tf.Tensor2D, xa: tf.Tensor2D): void {
  // Through an explicit transpose (wasm's transposed matMul is slow).
  const m = tf.matMul(tf.transpose(xb), xa).dataSync();
  for (let i = 0; i < m.length; i++) into[i] += m[i];
}

/** B's unit perm[j] becomes unit j: the assignment maximising the summed correlation with A's units. */
function unitPermutation(s: Stats | undefined, n: number): number[] {
  if (!s) return Array.from({ length: n }, (_, i) => i);
  return Array.from(solveAssignmentMax(correlationMatrix(s), n).rowToCol);
}
