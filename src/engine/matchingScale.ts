/**
 * Weight matching on weights near the float32 limit. The cost matrices are sums of products
 * W_A · W_B^T (Git Re-Basin section 3.2); with finite weights near ±3e38 these products overflow
 * float32 to Inf, and the assignment would refuse "NaN or infinite weights". Scaling every
 * tensor of a model by one power of two scales every cost matrix by one positive constant, which
 * leaves each assignment, and so the permutations, unchanged; objectives are scaled back in float64.
 */
import { float32Of, isStreamed, streamedDense, valuesOf, type HeldTensor, type HeldTensorMap } from '../core/heldTensor';

/** Above this magnitude a product of two weights, summed over a row, can overflow float32. */
const SAFE_MAGNITUDE = 2 ** 40;

function maxAbs(m: HeldTensorMap): number {
  let max = 0;
  for (const t of m.values()) {
    const d = valuesOf(t);
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
  }
  return max;
}

/**
 * The model's tensors scaled by a power of two so the largest is about 1 (exact in float32), and
 * the factor. Scaled tensors are float32 copies (16-bit ones too: rare weights, so no 16-bit
 * rescaling path; streamed ones scaled at each read).
 */
export function scaledForMatching(m: HeldTensorMap): { tensors: HeldTensorMap; factor: number } {
  const max = maxAbs(m);
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
