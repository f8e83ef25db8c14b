/**
 * The permutation of a block's MLP units that maximises their summed similarity to A's, shared by
 * orthogonal weight matching (core/symmetry/weightMatching.ts) and activation matching
 * (engine/compute/orthogonalMatching.ts). A mixture of experts permutes experts as wholes and
 * units within their expert (transformerGroup.ts): each pair of experts (A's, B's) is valued by
 * the best assignment of their units (plus what else moves with the expert, e.g. the router's
 * rows), the experts are assigned on those values, and the units within each matched pair. The
 * objective splits over expert pairs, so this is the best expert-respecting permutation.
 */
import { solveAssignmentMax } from '../assignment/lap';

export interface UnitAssignment {
  /** B's unit perm[j] becomes unit j. */
  readonly perm: number[];
  /** sum_j c[j, perm[j]] plus the matched experts' `expertBonus`. */
  readonly value: number;
}

/**
 * `c` [n x n]: c[i * n + j] = similarity of A's unit i and B's unit j; `experts` experts of n /
 * experts units each (1: plain units); `expertBonus` [experts x experts]: what matching A's
 * expert ea with B's eb adds beyond their units (row ea, column eb).
 */
export function unitAssignment(c: Float64Array, n: number, experts = 1, expertBonus?: Float64Array): UnitAssignment {
  if (experts <= 1) {
    const r = solveAssignmentMax(c, n);
    return { perm: Array.from(r.rowToCol), value: r.value };
  }
  const w = n / experts;
  const inner: Int32Array[][] = [];
  const value = new Float64Array(experts * experts);
  for (let ea = 0; ea < experts; ea++) {
    inner.push([]);
    for (let eb = 0; eb < experts; eb++) {
      const block = new Float64Array(w * w);
      for (let i = 0; i < w; i++) for (let j = 0; j < w; j++) block[i * w + j] = c[(ea * w + i) * n + eb * w + j];
      const r = solveAssignmentMax(block, w);
      inner[ea].push(r.rowToCol);
      value[ea * experts + eb] = r.value + (expertBonus?.[ea * experts + eb] ?? 0);
    }
  }
  const outer = solveAssignmentMax(value, experts);
  const perm = Array.from({ length: n }, (_, k) => {
    const [ea, u] = [Math.floor(k / w), k % w];
    return outer.rowToCol[ea] * w + inner[ea][outer.rowToCol[ea]][u];
  });
  return { perm, value: outer.value };
}

/** The expert order (new expert e is old expert order[e]) of an expert-respecting permutation of `experts` experts' stacked units. */
export function expertOrder(perm: readonly number[], experts: number): number[] {
  const w = perm.length / experts;
  return Array.from({ length: experts }, (_, e) => Math.floor(perm[e * w] / w));
}
