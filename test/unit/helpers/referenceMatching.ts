/**
 * A plain reference of weight matching (Git Re-Basin, Algorithm 1), written as the paper's code
 * does it and nothing more: float64 throughout, no caching, no skipped solves. Each sweep visits
 * the permutations in the same seeded order as the engine (names sorted, shuffled per sweep by
 * `shuffleInPlace(names, mulberry32(seed))`); for permutation P it builds
 *   C = sum over (tensor, axis) with P on axis of  moveaxis(A_t, axis, 0) . moveaxis(B_t', axis, 0)^T
 * where B_t' has every permutation except the one on `axis` applied, solves the assignment,
 * adopts it, and stops after a sweep in which no solve gained more than 1e-12.
 * Used by tests to check the engine's objective; slow on purpose.
 */
import type { PermSpec, TensorMap } from '../../../src/core/checkpoint';
import { solveAssignmentMax } from '../../../src/core/assignment/lap';
import { mulberry32, shuffleInPlace } from '../../../src/core/matching/prng';

export interface ReferenceResult {
  readonly perms: Record<string, Int32Array>;
  readonly iterations: number;
  /** Sum over spec tensors of <A_t, pi(B)_t>, float64. */
  readonly objective: number;
}

/** Element `idx` (multi-index) offsets: strides of a row-major shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]; }
  return s;
}

/**
 * Float64 copy of `data` with `axis` moved to the front ([n, rest], the other axes in order),
 * and each listed axis gathered by its permutation (out[.., i_d, ..] = data[.., perm_d[i_d], ..]).
 */
function frontGathered(
  data: Float32Array, shape: readonly number[], axis: number, perms: readonly (Int32Array | null)[],
): Float64Array {
  const rank = shape.length;
  const strides = stridesOf(shape);
  const order = [axis, ...shape.map((_, d) => d).filter((d) => d !== axis)];
  const out = new Float64Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let w = 0; w < out.length; w++) {
    let src = 0;
    for (let q = 0; q < rank; q++) {
      const d = order[q];
      const p = perms[d];
      src += (p ? p[idx[q]] : idx[q]) * strides[d];
    }
    out[w] = data[src];
    for (let q = rank - 1; q >= 0; q--) {
      if (++idx[q] < shape[order[q]]) break;
      idx[q] = 0;
    }
  }
  return out;
}

function axisPerms(spec: PermSpec, perms: Record<string, Int32Array>, tensor: string): (Int32Array | null)[] {
  return spec.axes[tensor].map((p) => (p === null ? null : perms[p]));
}

/** Sum over the spec's tensors of <A_t, pi(B)_t> in float64. */
export function referenceObjective(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Record<string, Int32Array>): number {
  let total = 0;
  for (const tensor of Object.keys(spec.axes)) {
    const ta = a.get(tensor)!;
    const tb = b.get(tensor)!;
    if (ta.shape.length === 0) { total += ta.data[0] * tb.data[0]; continue; }
    const pb = frontGathered(tb.data, tb.shape, 0, axisPerms(spec, perms, tensor));
    for (let i = 0; i < pb.length; i++) total += ta.data[i] * pb[i];
  }
  return total;
}

export function referenceWeightMatching(
  spec: PermSpec, a: TensorMap, b: TensorMap, opts: { seed: number; maxIter: number },
): ReferenceResult {
  const names = Object.keys(spec.perms).sort();
  const perms: Record<string, Int32Array> = {};
  for (const p of names) perms[p] = Int32Array.from({ length: spec.perms[p] }, (_, i) => i);
  const occurrences = new Map<string, { tensor: string; axis: number }[]>(names.map((p) => [p, []]));
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    axes.forEach((p, axis) => { if (p !== null) occurrences.get(p)!.push({ tensor, axis }); });
  }
  const random = mulberry32(opts.seed);
  let iterations = 0;
  for (let sweep = 0; sweep < opts.maxIter; sweep++) {
    let progress = false;
    for (const p of shuffleInPlace(names.slice(), random)) {
      const n = spec.perms[p];
      const cost = new Float64Array(n * n);
      for (const { tensor, axis } of occurrences.get(p)!) {
        const ta = a.get(tensor)!;
        const tb = b.get(tensor)!;
        const others = axisPerms(spec, perms, tensor);
        others[axis] = null;
        const wa = frontGathered(ta.data, ta.shape, axis, ta.shape.map(() => null));
        const wb = frontGathered(tb.data, tb.shape, axis, others);
        const rest = wa.length / n;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let k = 0; k < rest; k++) s += wa[i * rest + k] * wb[j * rest + k];
            cost[i * n + j] += s;
          }
        }
      }
      const solved = solveAssignmentMax(cost, n);
      let oldL = 0;
      let newL = 0;
      for (let i = 0; i < n; i++) {
        oldL += cost[i * n + perms[p][i]];
        newL += cost[i * n + solved.rowToCol[i]];
      }
      progress = progress || newL > oldL + 1e-12;
      perms[p] = Int32Array.from(solved.rowToCol);
    }
    iterations = sweep + 1;
    if (!progress) break;
  }
  return { perms, iterations, objective: referenceObjective(spec, a, b, perms) };
}
