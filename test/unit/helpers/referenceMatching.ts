/**
 * A plain reference of weight matching (Git Re-Basin, Algorithm 1), written as the paper's code
 * does it and nothing more: float64 throughout, no caching, no skipped solves. Each sweep visits
 * the permutations in the same seeded order as the engine (names sorted, shuffled per sweep by
 * `shuffleInPlace(names, mulberry32(seed))`); for permutation P it builds
 *   C = sum over (tensor, axis) with P on axis of  moveaxis(A_t, axis, 0) . moveaxis(B_t', axis, 0)^T
 * where B_t' has every permutation except the one on `axis` applied, solves the assignment,
 * adopts it, and stops after a sweep in which no solve gained more than 1e-12.
 * Used by tests to check the engine's objective; slow on purpose.
 *
 * Heads (block axes): a head group (a block permutation and the permutations inside its
 * blocks) is one step of the descent, visited under its block permutation's name. For every
 * pair (A's block g, B's block c) the inner permutations are found by trying every combination
 * (exhaustive, so tests keep heads tiny), the pair's value being sum_x S[x, src(x)] over the
 * group's tensors with S in float64; then one assignment over the blocks.
 */
import type { BlockAxis, BlockPart, PermSpec, TensorMap } from '../../../src/core/checkpoint';
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

/** Gather indices of a block axis, written out level by level (A's block picks the inner permutations). */
function expandBlocks(axis: BlockAxis, perms: Record<string, Int32Array>): Int32Array {
  const out: number[] = [];
  let offset = 0;
  for (const part of axis.parts) {
    const size = part.split.reduce((x, y) => x * y, 1);
    for (let x = 0; x < size; x++) {
      // Digits of x, outermost first.
      const digits: number[] = [];
      let r = x;
      for (let l = part.split.length - 1; l >= 0; l--) { digits[l] = r % part.split[l]; r = Math.floor(r / part.split[l]); }
      const g = digits[0];
      let src = 0;
      part.split.forEach((n, l) => {
        const name = part.perms[l];
        let d = digits[l];
        if (name !== null) d = l === 0 ? perms[name][g] : perms[name][g * n + d] - g * n;
        src = src * n + d;
      });
      out.push(offset + src);
    }
    offset += size;
  }
  return Int32Array.from(out);
}

function axisPerms(spec: PermSpec, perms: Record<string, Int32Array>, tensor: string): (Int32Array | null)[] {
  return spec.axes[tensor].map((p) => (p === null ? null : typeof p === 'string' ? perms[p] : expandBlocks(p, perms)));
}

/** Every permutation of 0..n-1. */
function allPermutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const rest of allPermutations(n - 1)) for (let k = 0; k <= rest.length; k++) out.push([...rest.slice(0, k), n - 1, ...rest.slice(k)]);
  return out;
}

interface RefGroup {
  readonly outer: string;
  readonly blocks: number;
  /** Inner permutation -> its size inside a block. */
  readonly members: Map<string, number>;
  readonly occurrences: { tensor: string; axis: number; offset: number; part: BlockPart }[];
}

/** One step for a head group: exhaustive inner permutations per pair of blocks, then the outer assignment. */
function solveGroupReference(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Record<string, Int32Array>, group: RefGroup): boolean {
  const G = group.blocks;
  const sims = group.occurrences.map(({ tensor, axis, offset, part }) => {
    const ta = a.get(tensor)!;
    const tb = b.get(tensor)!;
    const others = axisPerms(spec, perms, tensor);
    others[axis] = null;
    const wa = frontGathered(ta.data, ta.shape, axis, ta.shape.map(() => null));
    const wb = frontGathered(tb.data, tb.shape, axis, others);
    const rest = wa.length / ta.shape[axis];
    const n = part.split.reduce((x, y) => x * y, 1);
    const s = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = 0; k < rest; k++) v += wa[(offset + i) * rest + k] * wb[(offset + j) * rest + k];
        s[i * n + j] = v;
      }
    }
    return { part, n, s };
  });
  const names = [...group.members.keys()].sort();
  const choices = names.map((q) => allPermutations(group.members.get(q)!));
  // Value of A's block g with B's block c when member k uses local permutation taus[k].
  const pairValue = (g: number, c: number, taus: readonly number[][]): number => {
    let v = 0;
    for (const { part, n, s } of sims) {
      const inner = part.split.slice(1);
      const block = n / G;
      for (let x = 0; x < block; x++) {
        let r = x;
        const digits: number[] = [];
        for (let l = inner.length - 1; l >= 0; l--) { digits[l] = r % inner[l]; r = Math.floor(r / inner[l]); }
        let y = 0;
        inner.forEach((m, l) => {
          const name = part.perms[l + 1];
          y = y * m + (name === null ? digits[l] : taus[names.indexOf(name)][digits[l]]);
        });
        v += s[(g * block + x) * n + c * block + y];
      }
    }
    return v;
  };
  const combos: number[][][] = [[]];
  for (const options of choices) {
    const next: number[][][] = [];
    for (const c of combos) for (const o of options) next.push([...c, o]);
    combos.splice(0, combos.length, ...next);
  }
  const values = new Float64Array(G * G);
  const best: number[][][] = [];
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < G; c++) {
      let top = -Infinity;
      let arg: number[][] = [];
      for (const taus of combos) {
        const v = pairValue(g, c, taus);
        if (v > top) { top = v; arg = taus; }
      }
      values[g * G + c] = top;
      best[g * G + c] = arg;
    }
  }
  const localOf = (g: number): number[][] => names.map((q) => {
    const m = group.members.get(q)!;
    return Array.from({ length: m }, (_, i) => perms[q][g * m + i] - g * m);
  });
  let oldValue = 0;
  for (let g = 0; g < G; g++) oldValue += pairValue(g, perms[group.outer][g], localOf(g));
  const outer = solveAssignmentMax(values, G).rowToCol;
  let newValue = 0;
  for (let g = 0; g < G; g++) newValue += values[g * G + outer[g]];
  if (!(newValue > oldValue + 1e-12)) return false;
  perms[group.outer] = Int32Array.from(outer);
  names.forEach((q, k) => {
    const m = group.members.get(q)!;
    const flat = new Int32Array(G * m);
    for (let g = 0; g < G; g++) best[g * G + outer[g]][k].forEach((v, i) => { flat[g * m + i] = g * m + v; });
    perms[q] = flat;
  });
  return true;
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
  const all = Object.keys(spec.perms).sort();
  const perms: Record<string, Int32Array> = {};
  for (const p of all) perms[p] = Int32Array.from({ length: spec.perms[p] }, (_, i) => i);
  const occurrences = new Map<string, { tensor: string; axis: number }[]>(all.map((p) => [p, []]));
  const groups = new Map<string, RefGroup>();
  const inner = new Set<string>();
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    axes.forEach((p, axis) => {
      if (p === null) return;
      if (typeof p === 'string') { occurrences.get(p)!.push({ tensor, axis }); return; }
      let offset = 0;
      for (const part of p.parts) {
        const outer = part.perms[0]!;
        const group = groups.get(outer) ?? { outer, blocks: part.split[0], members: new Map<string, number>(), occurrences: [] };
        groups.set(outer, group);
        part.perms.forEach((q, l) => { if (q !== null && l > 0) { group.members.set(q, part.split[l]); inner.add(q); } });
        group.occurrences.push({ tensor, axis, offset, part });
        offset += part.split.reduce((x, y) => x * y, 1);
      }
    });
  }
  const names = all.filter((p) => !inner.has(p));
  const random = mulberry32(opts.seed);
  let iterations = 0;
  let anchored: string | undefined;
  // With heads: the hub (the plain permutation, with a tensor no other permutation touches, that
  // most other permutations share a tensor with: the residual stream) starts from its solve on
  // those tensors alone, as the engine does.
  if (groups.size > 0) {
    const outerOf = (e: PermSpec['axes'][string][number]): string[] => (e === null ? [] : typeof e === 'string' ? [e] : e.parts.map((part) => part.perms[0]!));
    let hub: string | undefined;
    let most = 0;
    for (const p of names) {
      if (groups.has(p)) continue;
      const free = occurrences.get(p)!.filter(({ tensor, axis }) => spec.axes[tensor].every((e, k) => k === axis || e === null));
      if (free.length === 0) continue;
      const dependents = names.filter((q) => Object.values(spec.axes).some((axes) => axes.some((e, k) => outerOf(e).includes(q) && axes.some((f, l) => l !== k && f === p)))).length;
      if (dependents > most) { most = dependents; hub = p; }
    }
    if (hub !== undefined) {
      const n = spec.perms[hub];
      const cost = new Float64Array(n * n);
      for (const { tensor, axis } of occurrences.get(hub)!) {
        if (!spec.axes[tensor].every((e, k) => k === axis || e === null)) continue;
        const ta = a.get(tensor)!;
        const tb = b.get(tensor)!;
        const wa = frontGathered(ta.data, ta.shape, axis, ta.shape.map(() => null));
        const wb = frontGathered(tb.data, tb.shape, axis, tb.shape.map(() => null));
        const rest = wa.length / n;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { let x = 0; for (let k = 0; k < rest; k++) x += wa[i * rest + k] * wb[j * rest + k]; cost[i * n + j] += x; }
      }
      perms[hub] = Int32Array.from(solveAssignmentMax(cost, n).rowToCol);
      anchored = hub;
    }
  }
  for (let sweep = 0; sweep < opts.maxIter; sweep++) {
    let progress = false;
    const order = shuffleInPlace(names.slice(), random);
    // The anchored hub is solved last in the first sweep, after every permutation that depends on it.
    if (sweep === 0 && anchored !== undefined) order.push(...order.splice(order.indexOf(anchored), 1));
    for (const p of order) {
      const group = groups.get(p);
      if (group) {
        progress = solveGroupReference(spec, a, b, perms, group) || progress;
        continue;
      }
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
