/**
 * Weight matching on weights near the float32 limit. The cost matrices are sums of products
 * W_A · W_B^T (Git Re-Basin section 3.2); with finite weights near ±3e38 these products overflow
 * float32 to Inf, and the assignment would refuse "NaN or infinite weights". Scaling every
 * tensor of a model by one power of two scales every cost matrix by one positive constant, which
 * leaves each assignment, and so the permutations, unchanged; objectives are scaled back in float64.
 */
import type { PermSpec } from '../core/checkpoint';
import { float32Of, isStreamed, streamedDense, valuesOf, type HeldTensor, type HeldTensorMap, type HeldValues } from '../core/heldTensor';
import { permutedDot } from '../core/matching/permute';
import { objectiveTerm } from '../core/matching/weightMatching';

/** Above this magnitude a product of two weights, summed over a row, can overflow float32. */
const SAFE_MAGNITUDE = 2 ** 40;

function maxAbsOf(d: HeldValues, max: number): number {
  if (d instanceof Float32Array) {
    for (let i = 0; i < d.length; i++) {
      const v = Math.abs(d[i]);
      if (v > max && v !== Infinity) max = v;
    }
  } else {
    const { bits, table } = d;
    for (let i = 0; i < bits.length; i++) {
      const v = Math.abs(table[bits[i]]);
      if (v > max && v !== Infinity) max = v;
    }
  }
  return max;
}

function maxAbs(m: HeldTensorMap): number {
  let max = 0;
  for (const t of m.values()) max = maxAbsOf(valuesOf(t), max);
  return max;
}

interface Scaled {
  readonly tensors: HeldTensorMap;
  readonly factor: number;
}

/**
 * The model's tensors scaled by a power of two so the largest is about 1 (exact in float32), and
 * the factor. Scaled tensors are float32 copies (16-bit ones too: rare weights, so no 16-bit
 * rescaling path; streamed ones scaled at each read).
 */
export function scaledForMatching(m: HeldTensorMap): Scaled {
  return scaledBy(m, maxAbs(m));
}

/**
 * `scaledForMatching` of both models, and weight matching's starting terms <A_t, B_t> (its
 * `startingDots`) from the same reads: out of core every read of a tensor comes from its file, and
 * the two passes over a 7B pair would read 54 GB from disk before the first solve. The terms are
 * given only when neither model is scaled (scaled, weight matching computes them on the scaled
 * values, as in memory); they are the same sums `permutedDot` makes there, bit for bit.
 */
export function scaledWithStartingDots(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap): { a: Scaled; b: Scaled; startingDots?: Map<string, number> } {
  let maxA = 0;
  let maxB = 0;
  const dots = new Map<string, number>();
  for (const [name, ta] of a) {
    const va = valuesOf(ta);
    maxA = maxAbsOf(va, maxA);
    const tb = b.get(name);
    if (!tb) continue;
    const vb = valuesOf(tb);
    maxB = maxAbsOf(vb, maxB);
    if (spec.axes[name] && objectiveTerm(spec, name) !== 'excluded' && tb.shape.length === ta.shape.length) {
      dots.set(name, permutedDot(va, vb, tb.shape, tb.shape.map(() => null)));
    }
  }
  for (const [name, tb] of b) if (!a.has(name)) maxB = maxAbsOf(valuesOf(tb), maxB);
  const sa = scaledBy(a, maxA);
  const sb = scaledBy(b, maxB);
  return { a: sa, b: sb, ...(sa.factor === 1 && sb.factor === 1 ? { startingDots: dots } : {}) };
}

function scaledBy(m: HeldTensorMap, max: number): Scaled {
  if (max <= SAFE_MAGNITUDE) return { tensors: m, factor: 1 };
  const factor = 2 ** -Math.ceil(Math.log2(max));
  const tensors = new Map<string, HeldTensor>();
  // Streamed tensors (out of core) stay streamed: scaled at each read, never held.
  for (const [name, t] of m) tensors.set(name, isStreamed(t) ? streamedDense(t.shape, () => float32Of(t).map((v) => v * factor)) : { shape: t.shape, data: float32Of(t).map((v) => v * factor) });
  return { tensors, factor };
}

/** A matching result's objectives back on the weights' own scale (float64: 9e76 fits). */
export function unscaledObjectives<R extends { objectiveBefore: number; objectiveAfter: number; objectiveFixed: number; groups: readonly G[] }, G extends { objectiveBefore: number; objectiveAfter: number }>(r: R, k: number): R {
  if (k === 1) return r;
  return {
    ...r,
    objectiveBefore: r.objectiveBefore * k,
    objectiveAfter: r.objectiveAfter * k,
    objectiveFixed: r.objectiveFixed * k,
    groups: r.groups.map((g) => ({ ...g, objectiveBefore: g.objectiveBefore * k, objectiveAfter: g.objectiveAfter * k })),
  };
}
