/**
 * Weight matching of one attention layer's heads (a block-axis group: the outer permutation of
 * the blocks and the per-block permutations inside them), after Verma & Elbayad 2024
 * (arXiv 2403.00986): for every candidate pair (head g of A, head c of B) the inner
 * permutations are solved by assignment on the pair's block of the similarity, giving the
 * pair's value; then one outer assignment over the heads maximises the sum of the values.
 * With grouped-query attention the blocks are KV groups and the query heads of a group are
 * one more inner level, solved per candidate group pair like the head dimensions.
 *
 * Input, per distinct block structure (split + level permutations) of the group:
 *   S[x, y] = sum over the tensors with that structure of < A unit x , B' unit y >
 * over the block axis (B' with every permutation on the tensors' other axes applied). The
 * objective's part that depends on the group is sum_x S[x, src(x)], src as in blockAxis.ts.
 * When two inner levels meet in one tensor (o_proj: query head x v/o dimension) the pair's
 * inner problem is not a single assignment: the smaller level (query heads per group) is
 * enumerated when it has at most 720 permutations, the other solved by assignment for each
 * choice (exact); beyond that, alternating assignments from each level's own tensors.
 */
import { solveAssignmentMax } from '../assignment/lap';
import { levelStrides } from '../blockAxis';

export interface HeadStructure {
  /** [blocks, inner levels...]. */
  readonly split: readonly number[];
  /** [outer permutation, inner permutation or null per inner level]. */
  readonly perms: readonly (string | null)[];
  /** N x N, N = product of split. */
  readonly s: Float32Array;
}

export interface HeadSolution {
  /** The blocks' permutation (A's block g takes B's block outer[g]). */
  readonly outer: Int32Array;
  /** Each inner permutation, flat per block (blocks x size, block g mapped onto itself). */
  readonly inner: Map<string, Int32Array>;
  /** Value of the group's objective part under this solution. */
  readonly value: number;
}

/** Digits of each position inside one block, per inner level. */
function blockDigits(split: readonly number[]): { size: number; digits: Int32Array[]; strides: number[] } {
  const inner = split.slice(1);
  const strides = levelStrides(inner);
  const size = inner.reduce((p, s) => p * s, 1);
  const digits = inner.map((_, l) => {
    const d = new Int32Array(size);
    for (let x = 0; x < size; x++) d[x] = Math.floor(x / strides[l]) % inner[l];
    return d;
  });
  return { size, digits, strides };
}

interface Prepared {
  readonly st: HeadStructure;
  readonly n: number;
  readonly block: number;
  readonly digits: Int32Array[];
  readonly strides: number[];
}

function prepare(structs: readonly HeadStructure[]): Prepared[] {
  return structs.map((st) => {
    const { size, digits, strides } = blockDigits(st.split);
    return { st, n: st.split[0] * size, block: size, digits, strides };
  });
}

/** Column (inside B's block) of position x of A's block, under local inner permutations. */
function target(p: Prepared, x: number, taus: ReadonlyMap<string, Int32Array>, skip = -1): number {
  let y = 0;
  for (let l = 0; l < p.digits.length; l++) {
    if (l === skip) continue;
    const name = p.st.perms[l + 1];
    const t = name === null ? undefined : taus.get(name);
    const d = p.digits[l][x];
    y += (t ? t[d] : d) * p.strides[l];
  }
  return y;
}

/** Value of pairing A's block g with B's block c under local inner permutations `taus`. */
function pairValue(ps: readonly Prepared[], g: number, c: number, taus: ReadonlyMap<string, Int32Array>): number {
  let v = 0;
  for (const p of ps) {
    const row0 = g * p.block;
    const col0 = c * p.block;
    for (let x = 0; x < p.block; x++) v += p.st.s[(row0 + x) * p.n + col0 + target(p, x, taus)];
  }
  return v;
}

/**
 * M[u, v] = the pair's value gained when member `name` maps u to v (other levels by `taus`),
 * from the structures `use` accepts.
 */
function memberMatrix(
  ps: readonly Prepared[], g: number, c: number, name: string, m: number, taus: ReadonlyMap<string, Int32Array>, use: (p: Prepared) => boolean,
): Float64Array {
  const out = new Float64Array(m * m);
  for (const p of ps) {
    const level = p.st.perms.indexOf(name) - 1;
    if (level < 0 || !use(p)) continue;
    const row0 = g * p.block;
    const col0 = c * p.block;
    const stride = p.strides[level];
    const digit = p.digits[level];
    for (let x = 0; x < p.block; x++) {
      const base = (row0 + x) * p.n + col0 + target(p, x, taus, level);
      const u = digit[x];
      for (let v = 0; v < m; v++) out[u * m + v] += p.st.s[base + v * stride];
    }
  }
  return out;
}

function innerLevels(p: Prepared): number {
  return p.st.perms.slice(1).filter((q) => q !== null).length;
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

const INNER_ROUNDS = 8;
/** Enumerate a coupled level's permutations when it has at most this many (6! = 720). */
const ENUMERATE_MAX = 720;

function allPermutations(n: number): Int32Array[] {
  if (n === 0) return [new Int32Array(0)];
  const out: Int32Array[] = [];
  for (const rest of allPermutations(n - 1)) {
    for (let k = 0; k <= rest.length; k++) out.push(Int32Array.from([...rest.subarray(0, k), n - 1, ...rest.subarray(k)]));
  }
  return out;
}

function factorial(n: number): number {
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return f;
}

/**
 * Alternating assignments over `names` (the other members fixed in `taus`), starting from each
 * level's own tensors; returns the pair's value.
 */
function alternate(ps: readonly Prepared[], g: number, c: number, names: readonly string[], members: ReadonlyMap<string, number>, taus: Map<string, Int32Array>): number {
  for (let round = 0; round < INNER_ROUNDS; round++) {
    let changed = false;
    for (const name of names) {
      const m = members.get(name)!;
      // First round: each level from the tensors where it is the only free inner level, if any.
      const alone = (p: Prepared): boolean => p.st.perms.slice(1).filter((q) => q !== null && names.includes(q)).length === 1;
      const use = round === 0 && ps.some((p) => p.st.perms.includes(name) && alone(p)) ? alone : () => true;
      const solved = solveAssignmentMax(memberMatrix(ps, g, c, name, m, taus, use), m).rowToCol;
      const old = taus.get(name)!;
      if (solved.some((v, i) => v !== old[i])) changed = true;
      taus.set(name, Int32Array.from(solved));
    }
    if (!changed && round > 0) break;
  }
  return pairValue(ps, g, c, taus);
}

/**
 * The best inner permutations of one pair of blocks and the pair's value. One inner level: one
 * assignment (exact). Levels that meet in one tensor (GQA's query heads x v/o dimensions in
 * o_proj): the smallest coupled level is enumerated when it has at most 720 permutations and
 * the others solved by assignment for each (exact with two levels); else alternating assignments.
 */
function solvePair(ps: readonly Prepared[], g: number, c: number, members: ReadonlyMap<string, number>): { taus: Map<string, Int32Array>; value: number } {
  const names = [...members.keys()].sort();
  const fresh = (): Map<string, Int32Array> => new Map([...members].map(([name, m]) => [name, identity(m)]));
  const coupled = names.filter((name) => ps.some((p) => p.st.perms.includes(name) && innerLevels(p) > 1));
  const small = coupled.filter((name) => factorial(members.get(name)!) <= ENUMERATE_MAX).sort((x, y) => members.get(x)! - members.get(y)!)[0];
  if (small === undefined) {
    const taus = fresh();
    return { taus, value: alternate(ps, g, c, names, members, taus) };
  }
  const rest = names.filter((n) => n !== small);
  let best: { taus: Map<string, Int32Array>; value: number } | undefined;
  for (const choice of allPermutations(members.get(small)!)) {
    const taus = fresh();
    taus.set(small, choice);
    const value = alternate(ps, g, c, rest, members, taus);
    if (!best || value > best.value) best = { taus, value };
  }
  return best!;
}

/** Local inner permutations of block g from the flat per-block values. */
function localTaus(inner: ReadonlyMap<string, Int32Array>, members: ReadonlyMap<string, number>, g: number): Map<string, Int32Array> {
  const out = new Map<string, Int32Array>();
  for (const [name, m] of members) {
    const flat = inner.get(name)!;
    const t = new Int32Array(m);
    for (let i = 0; i < m; i++) t[i] = flat[g * m + i] - g * m;
    out.set(name, t);
  }
  return out;
}

/** The group's objective part for given outer and (flat) inner permutations. */
export function headGroupValue(
  structs: readonly HeadStructure[], outer: Int32Array, inner: ReadonlyMap<string, Int32Array>, members: ReadonlyMap<string, number>,
): number {
  const ps = prepare(structs);
  let v = 0;
  for (let g = 0; g < outer.length; g++) v += pairValue(ps, g, outer[g], localTaus(inner, members, g));
  return v;
}

/**
 * Solves the group: an inner assignment for every pair of blocks, then the outer assignment
 * over the pairs' values. `members`: inner permutation name -> its size inside one block.
 */
export function solveHeadGroup(structs: readonly HeadStructure[], blocks: number, members: ReadonlyMap<string, number>): HeadSolution {
  const ps = prepare(structs);
  const values = new Float64Array(blocks * blocks);
  const pairs: Map<string, Int32Array>[] = new Array(blocks * blocks);
  for (let g = 0; g < blocks; g++) {
    for (let c = 0; c < blocks; c++) {
      const r = solvePair(ps, g, c, members);
      values[g * blocks + c] = r.value;
      pairs[g * blocks + c] = r.taus;
    }
  }
  const outer = Int32Array.from(solveAssignmentMax(values, blocks).rowToCol);
  const inner = new Map<string, Int32Array>();
  let value = 0;
  for (const [name, m] of members) inner.set(name, new Int32Array(blocks * m));
  for (let g = 0; g < blocks; g++) {
    const taus = pairs[g * blocks + outer[g]];
    value += values[g * blocks + outer[g]];
    for (const [name, m] of members) {
      const t = taus.get(name)!;
      const flat = inner.get(name)!;
      for (let i = 0; i < m; i++) flat[g * m + i] = g * m + t[i];
    }
  }
  return { outer, inner, value };
}

/**
 * Similarity pictures of a group whose structures were built with B fully aligned (every
 * permutation applied): for the outer permutation, value[g, c] of pairing A's block g with
 * B's block c as they stand; for an inner one, its matrix inside each block (block g against
 * block g), zero between blocks.
 */
export function headSimilarity(structs: readonly HeadStructure[], blocks: number, name: string, members: ReadonlyMap<string, number>): Float32Array {
  const m = members.get(name);
  if (m === undefined) {
    const ps = prepare(structs);
    const none = new Map<string, Int32Array>();
    const out = new Float32Array(blocks * blocks);
    for (let g = 0; g < blocks; g++) for (let c = 0; c < blocks; c++) out[g * blocks + c] = pairValue(ps, g, c, none);
    return out;
  }
  const n = blocks * m;
  const out = new Float32Array(n * n);
  const diagonal = headBlockSimilarity(structs, blocks, name, members);
  for (let g = 0; g < blocks; g++) {
    for (let u = 0; u < m; u++) out.set(diagonal.subarray((g * m + u) * m, (g * m + u + 1) * m), (g * m + u) * n + g * m);
  }
  return out;
}

/**
 * Just the diagonal blocks of an inner permutation's `headSimilarity` (everything else is zero):
 * `blocks` row-major m × m matrices end to end, block g pairing A's block g with B's block g as
 * the structures stand (B already permuted by the outer permutation).
 */
export function headBlockSimilarity(structs: readonly HeadStructure[], blocks: number, name: string, members: ReadonlyMap<string, number>): Float32Array {
  const m = members.get(name);
  if (m === undefined) throw new Error(`headBlockSimilarity: \`${name}\` is not an inner permutation of this head group`);
  const ps = prepare(structs);
  const none = new Map<string, Int32Array>();
  const out = new Float32Array(blocks * m * m);
  for (let g = 0; g < blocks; g++) out.set(memberMatrix(ps, g, g, name, m, none, () => true), g * m * m);
  return out;
}
