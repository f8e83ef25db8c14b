/**
 * Weight matching (Ainsworth et al., Git Re-Basin, section 3.2 and Algorithm 1): coordinate
 * descent over the permutations. For permutation P, with every other permutation held fixed,
 *   C[i, j] = sum over (tensor t, axis a) with P on axis a of  < A_t unit i , B_t unit j >
 * where B_t has the other permutations applied; the maximising assignment of C is P's best
 * value. Sweeps visit the permutations in a seeded random order and stop after a sweep that
 * improves nothing by more than 1e-12, or at `maxIter` sweeps.
 *
 * Convention (checkpoint.ts `Permutations`): gather indices, `aligned_B[t] = take(B[t], perm, axis)`;
 * unit i of A is matched with unit perm[i] of B, i.e. perm = rowToCol of the assignment.
 *
 * Cost: the products dominate. Each (tensor, axis) "occurrence" is a product
 * A_t(axis to front, [n, r]) . B_t(others applied, axis to front, [n, r])^T. Its value depends
 * only on the permutations on the tensor's OTHER axes, so it is cached with their versions and
 * recomputed only when one of them changed (occurrences with no other permutation are summed
 * once into a per-permutation constant), and a permutation whose inputs did not change since
 * its last solve is not solved again (it is still optimal for them). Memory: see
 * src/core/memoryPlan.ts. With a `memoryBudget`, the plan is made before anything is allocated:
 * held constants (per permutation with both kinds of occurrence, one n x n float32) when they fit,
 * cached products up to what the budget leaves, recomputation beyond; products computed by
 * blocks of rows, their operands (A's and B's tensor with the axis in front) made per product.
 *
 * Attention heads (block axes, src/core/blockAxis.ts): a layer's head group (its block
 * permutation and the per-block permutations inside it) is one coordinate of the descent,
 * visited under the block permutation's name. Its step builds, under the current other
 * permutations, the similarity of every block part's units, then solves an inner assignment
 * for each candidate pair of heads and one outer assignment over the pairs' values
 * (src/core/matching/headMatching.ts, Verma & Elbayad 2024); it is adopted when it improves the
 * group's part of the objective.
 */
import type { BlockPart, MatMulABt, PermSpec, Permutations, Progress } from '../checkpoint';
import { elementCount, float32Of, heldBytes as bytesHeld, valuesOf, type HeldTensor, type HeldTensorMap } from '../heldTensor';
import { AssignmentError, solveAssignmentMaxAsync, type AssignmentProgress, type AssignmentResult, type AsyncSolveOptions } from '../assignment/lap';
import { cancelled, MatchingError } from './errors';
import { checkPermutation, gatherAxes, permutedDot, identityPermutation, permuteTensor, axisPermsOf } from './permute';
import { mulberry32, shuffleInPlace } from './prng';
import { matMulABt } from './jsMatMul';
import { planWeightMatching, PRODUCT_BLOCK_BYTES } from '../memoryPlan';
import { blockAxisSize, blockViolation, entryPermNames, isBlockAxis, partSize } from '../blockAxis';
import { headGroupValue, headSimilarity, headBlockSimilarity, solveHeadGroup, type HeadStructure } from './headMatching';
import { formatTimeLeft, permutationWords, secondsLeftAtRate } from '../progressText';

export interface WeightMatchingOptions {
  readonly seed: number;
  readonly maxIter: number;
  readonly matmul: MatMulABt;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Starting permutations (default identity). */
  readonly initPerms?: Permutations;
  /**
   * Memory budget of the whole job in bytes (A and B as given count as held): the cost matrices
   * are planned against it before anything is allocated (src/core/memoryPlan.ts), cached
   * contributions get what it leaves, and a solve that cannot fit throws MemoryBudgetError.
   * Without it: constants held and a 1 GiB cache, unchecked.
   */
  readonly memoryBudget?: number;
  /** Budget for cached occurrence products, in bytes (default: what the memory plan leaves, else 1 GiB). */
  readonly cacheBytes?: number;
  /**
   * Bytes the process holds besides the two models (runtime, native library, heaps), counted
   * against `memoryBudget` like the models: a plan that does not fit beside them is refused.
   */
  readonly reservedBytes?: number;
  /**
   * The process's resident bytes now (the engine passes process.memoryUsage.rss). With a
   * `memoryBudget`, a contribution is cached only while the measured residency, the entry and
   * one solve's working set fit the budget: the plan counts what this code allocates, but not
   * the backend's own copies, allocator pools or garbage not yet collected, and the budget is
   * what the user sees in the process's memory.
   */
  readonly residentBytes?: () => number;
  /** Milliseconds clock of the progress reports (tests drive it; default Date.now). */
  readonly clock?: () => number;
  /**
   * A and B are streamed (out of core: each product reads its tensors from their files, see
   * src/engine/streamedTensors.ts): progress says so, "layer 12 MLP — reading from disk".
   */
  readonly readsFromDisk?: boolean;
  /**
   * <A_t, B_t> of each spec tensor under the starting permutations (no `initPerms`: the
   * identity), when the caller has already read both models for them: out of core, a pass over
   * the pair costs its size in reads from disk (27 GB at 7B), so the scaling's pass computes these
   * too (src/engine/matchingScale.ts) and the objective before matching reads nothing again.
   */
  readonly startingDots?: ReadonlyMap<string, number>;
  /**
   * Called after each solve with where its time went (the engine logs it with --debug, and the
   * scale bench sums it): its cost matrix's products (with the reads of streamed tensors) and its
   * assignment.
   */
  readonly onSolved?: (s: SolveTimes) => void;
}

/** One solve of the descent, timed (see `WeightMatchingOptions.onSolved`). */
export interface SolveTimes {
  /** The permutation, or a head group's block permutation. */
  readonly name: string;
  readonly units: number;
  readonly sweep: number;
  /** Seconds building the cost matrix (products, operands, reads), and solving its assignment. */
  readonly productSeconds: number;
  readonly assignmentSeconds: number;
}

/**
 * Per permutation group. `objectiveBefore`/`objectiveAfter` are the part of the total objective
 * that involves the group: sum over every (tensor, axis) the group acts on of <A_t, pi(B)_t>,
 * under the starting permutations and the final ones. This is the trace of the group's cost
 * matrix taken along its permutation (sum_i C[i, perm[i]]), so it is what the solver maximises;
 * a tensor with two permuted axes counts in both groups.
 */
export interface GroupReport {
  readonly name: string;
  readonly size: number;
  /** Units whose final permutation entry differs from the identity. */
  readonly moved: number;
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
}

export interface WeightMatchingResult {
  readonly perms: Record<string, Int32Array>;
  /** Sweeps run (each visits every permutation once). */
  readonly iterations: number;
  /**
   * Sum over the spec tensors a permutation acts on of <A_t, pi(B)_t>, with the starting and
   * final permutations (float64): what the permutations can change.
   */
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
  /**
   * Sum of <A_t, B_t> over the spec tensors no permutation touches (a ResNet's
   * `num_batches_tracked`: tens of millions beside a matchable ~435), the same before and after.
   */
  readonly objectiveFixed: number;
  readonly groups: GroupReport[];
}

/** One axis of one tensor that a permutation acts on. */
interface Occurrence {
  readonly tensor: string;
  readonly axis: number;
  /** Units on the axis (P's size). */
  readonly n: number;
  /** Product of the other axes' sizes. */
  readonly rest: number;
  /** Permutation names on the other axes (may include P itself for a doubly permuted tensor). */
  readonly dependsOn: readonly string[];
  /**
   * A with the axis moved to the front, [n, rest]: A's own data when the axis is 0 (float32),
   * else made for each product, into a reused buffer when given (held for every occurrence,
   * these copies would add up to a whole third model; one gather costs O(size), the product
   * O(n * size)).
   */
  readonly aFront: (into?: Float32Array) => Float32Array;
  cached?: Float32Array;
  cachedVersions?: number[];
  /**
   * The permutations on B's axes `cached` was computed with (for low-rank updates: B's operand
   * then is rebuilt from them, not held: at 1B parameters the held operands would take more
   * than the products).
   */
  cachedAxisPerms?: (Int32Array | null)[];
}

/** One part of a block axis (heads) whose outer permutation is a group's. */
interface BlockOccurrence {
  readonly tensor: string;
  readonly axis: number;
  /** First position of the part on the axis, and its length. */
  readonly offset: number;
  readonly size: number;
  readonly part: BlockPart;
  readonly rest: number;
  readonly dependsOn: readonly string[];
  readonly aFront: (into?: Float32Array) => Float32Array;
}

/** A head group: the block permutation `outer`, its inner permutations (name -> size inside a block). */
interface HeadGroup {
  readonly outer: string;
  readonly blocks: number;
  readonly members: Map<string, number>;
  readonly occurrences: BlockOccurrence[];
}

interface Plan {
  /** What coordinate descent visits: whole-axis permutations and head groups (by their outer permutation). */
  readonly names: readonly string[];
  readonly occurrences: ReadonlyMap<string, Occurrence[]>;
  readonly heads: ReadonlyMap<string, HeadGroup>;
}

/**
 * BatchNorm running statistics (`running_mean`, `running_var`) follow their channel's
 * permutation when B is permuted, but they are buffers, not learned weights, and the paper's
 * code leaves them out of the matching (its specs list only `weight` and `bias` of a norm).
 * They stay out of the objective here too: running_var is positive, so its term would reward
 * pairing high-variance channels with high-variance channels whatever the weights say, and
 * its scale is unrelated to the weights'.
 */
export function isRunningStatistic(tensor: string): boolean {
  return /(^|\.)running_(mean|var)$/.test(tensor);
}

/**
 * Where a spec tensor's <A_t, pi(B)_t> goes in the reported objective: 'permuted' when a
 * permutation acts on one of its axes, 'fixed' when none does (its term cannot change and is
 * reported apart), 'excluded' for running statistics (see isRunningStatistic).
 */
export function objectiveTerm(spec: PermSpec, tensor: string): 'permuted' | 'fixed' | 'excluded' {
  if (isRunningStatistic(tensor)) return 'excluded';
  return (spec.axes[tensor] ?? []).some((e) => entryPermNames(e).length > 0) ? 'permuted' : 'fixed';
}

function frontOrder(rank: number, axis: number): number[] {
  const order = [axis];
  for (let d = 0; d < rank; d++) if (d !== axis) order.push(d);
  return order;
}

/**
 * A's tensor with `axis` in front, [n, rest], made when a product needs it: A's own float32
 * array when the axis is 0, else (or for a 16-bit tensor) written into `into` or a new array.
 */
function aFrontOf(ta: HeldTensor, axis: number): (into?: Float32Array) => Float32Array {
  if (axis === 0) return (into) => float32Of(ta, into);
  return (into) => gatherAxes(valuesOf(ta), ta.shape, ta.shape.map(() => null), frontOrder(ta.shape.length, axis), into);
}

/**
 * Reusable buffers for the operands of one product at a time (A's, B's, B's previous): made
 * per product, they would be garbage by the hundreds of megabytes at 1B parameters (a 32000 x
 * 2048 embedding is 262 MB as float32), left to the collector's timing. Each grows to the
 * largest operand it has held; `take` gives a view of the first `size` values.
 */
class OperandBuffers {
  private readonly buffers = new Map<string, Float32Array>();
  take(slot: 'a' | 'b' | 'bOld', size: number): Float32Array {
    let buf = this.buffers.get(slot);
    if (!buf || buf.length < size) {
      buf = new Float32Array(size);
      this.buffers.set(slot, buf);
    }
    return buf.subarray(0, size);
  }
}

/** Validates the spec against both models and lists each permutation's occurrences. */
function plan(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, only?: string): Plan {
  const all = Object.keys(spec.perms).sort();
  const occurrences = new Map<string, Occurrence[]>(all.map((p) => [p, []]));
  const heads = new Map<string, HeadGroup>();
  const groupOf = new Map<string, string>();
  const wholeAxis = new Set<string>();
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    const ta = a.get(tensor);
    const tb = b.get(tensor);
    if (!ta) throw new MatchingError('MissingTensor', `weight matching: tensor \`${tensor}\` is missing from model A`, tensor);
    if (!tb) throw new MatchingError('MissingTensor', `weight matching: tensor \`${tensor}\` is missing from model B`, tensor);
    if (ta.shape.length !== tb.shape.length || ta.shape.some((s, d) => s !== tb.shape[d])) {
      throw new MatchingError('ShapeMismatch', `weight matching: tensor \`${tensor}\` has shape [${ta.shape}] in A and [${tb.shape}] in B`, tensor);
    }
    if (axes.length !== ta.shape.length) {
      throw new MatchingError('BadSpec', `weight matching: spec gives ${axes.length} axes for tensor \`${tensor}\` of rank ${ta.shape.length}`, tensor);
    }
    axes.forEach((p, axis) => {
      if (p === null) return;
      if (isBlockAxis(p)) {
        if (blockAxisSize(p) !== ta.shape[axis]) {
          throw new MatchingError('ShapeMismatch', `weight matching: the blocks of axis ${axis} of tensor \`${tensor}\` cover ${blockAxisSize(p)} units, the axis has ${ta.shape[axis]}`, tensor);
        }
        const rest = elementCount(ta) / ta.shape[axis];
        const dependsOn = [...new Set(axes.flatMap((q, d) => (d !== axis ? entryPermNames(q) : [])))];
        const aFront = aFrontOf(ta, axis);
        let offset = 0;
        for (const part of p.parts) {
          const outer = part.perms[0];
          const size = partSize(part);
          if (outer === null) throw new MatchingError('BadSpec', `weight matching: a block axis of tensor \`${tensor}\` has no block permutation`, tensor);
          const group = heads.get(outer) ?? { outer, blocks: part.split[0], members: new Map<string, number>(), occurrences: [] };
          heads.set(outer, group);
          groupOf.set(outer, outer);
          part.perms.forEach((q, level) => {
            if (q === null || level === 0) return;
            const known = groupOf.get(q);
            if (known !== undefined && known !== outer) {
              throw new MatchingError('BadSpec', `weight matching: permutation \`${q}\` is inside the blocks of both \`${known}\` and \`${outer}\``, tensor);
            }
            groupOf.set(q, outer);
            group.members.set(q, part.split[level]);
          });
          if ((only === undefined || entryPermNames(p).includes(only)) && !isRunningStatistic(tensor)) {
            group.occurrences.push({ tensor, axis, offset, size, part, rest, dependsOn, aFront });
          }
          offset += size;
        }
        return;
      }
      wholeAxis.add(p);
      const size = spec.perms[p];
      if (size === undefined) throw new MatchingError('BadSpec', `weight matching: tensor \`${tensor}\` names unknown permutation \`${p}\``, tensor);
      if (ta.shape[axis] !== size) {
        throw new MatchingError('ShapeMismatch', `weight matching: axis ${axis} of tensor \`${tensor}\` has ${ta.shape[axis]} units, permutation \`${p}\` has ${size}`, tensor);
      }
      if (only !== undefined && p !== only) return;
      if (isRunningStatistic(tensor)) return;
      const rest = elementCount(ta) / size;
      const dependsOn = [...new Set(axes.flatMap((q, d) => (d !== axis ? entryPermNames(q) : [])))];
      const aFront = aFrontOf(ta, axis);
      occurrences.get(p)!.push({ tensor, axis, n: size, rest, dependsOn, aFront });
    });
  }
  for (const p of wholeAxis) {
    if (groupOf.has(p)) {
      throw new MatchingError('BadSpec', `weight matching: permutation \`${p}\` permutes both blocks (heads) and a whole axis; give the whole axis its own permutation`);
    }
  }
  const names = all.filter((p) => !groupOf.has(p) || heads.has(p));
  return { names, occurrences, heads };
}

/** B_t with the permutations on the occurrence's other axes applied, the axis moved to the front. */
function bFront(spec: PermSpec, perms: Permutations, occ: { readonly tensor: string; readonly axis: number }, tb: HeldTensor, includeOwn: boolean, into?: Float32Array): Float32Array {
  return bFrontWith(bAxisPerms(spec, perms, occ, includeOwn), occ.axis, tb, into);
}

/** The permutations on B's axes for an occurrence's operand (its own axis too when `includeOwn`). */
function bAxisPerms(spec: PermSpec, perms: Permutations, occ: { readonly tensor: string; readonly axis: number }, includeOwn: boolean): (Int32Array | null)[] {
  const axisPerms = axisPermsOf(spec, perms, occ.tensor);
  if (!includeOwn) axisPerms[occ.axis] = null;
  return axisPerms;
}

/** B's tensor gathered along `axisPerms`, `axis` moved to the front (into `into` when given, see `aFrontOf`). */
function bFrontWith(axisPerms: readonly (Int32Array | null)[], axis: number, tb: HeldTensor, into?: Float32Array): Float32Array {
  if (axis === 0 && axisPerms.every((p) => p === null)) return float32Of(tb, into);
  return gatherAxes(valuesOf(tb), tb.shape, axisPerms, frontOrder(tb.shape.length, axis), into);
}

function addInto(target: Float32Array, x: Float32Array, offset = 0): void {
  for (let i = 0; i < x.length; i++) target[offset + i] += x[i];
}

/**
 * target[n, n] += aFront[n, k] . b[n, k]^T, by blocks of A's rows so that no single product
 * holds more than PRODUCT_BLOCK_BYTES of result (a wasm heap is 4 GB at most: a whole
 * 30000 x 30000 product would not fit, and would double the cost matrix's memory).
 */
async function addProductInto(target: Float32Array, aFront: Float32Array, b: Float32Array, n: number, k: number, matmul: MatMulABt): Promise<void> {
  const rows = Math.max(1, Math.floor(PRODUCT_BLOCK_BYTES / (4 * n)));
  if (rows >= n) {
    addInto(target, await matmul.abT(aFront, b, n, k, n));
    return;
  }
  if (matmul.abTByRows) {
    await matmul.abTByRows(aFront, b, n, k, n, rows, (c, r0) => addInto(target, c, r0 * n));
    return;
  }
  for (let r0 = 0; r0 < n; r0 += rows) {
    const r1 = Math.min(n, r0 + rows);
    addInto(target, await matmul.abT(aFront.subarray(r0 * k, r1 * k), b, r1 - r0, k, n), r0 * n);
  }
}

/** aFront[n, k] . b[n, k]^T as a new array (the backend's own result when it is one block). */
async function productOf(aFront: Float32Array, b: Float32Array, n: number, k: number, matmul: MatMulABt): Promise<Float32Array> {
  if (Math.floor(PRODUCT_BLOCK_BYTES / (4 * n)) >= n) return matmul.abT(aFront, b, n, k, n);
  const out = new Float32Array(n * n);
  await addProductInto(out, aFront, b, n, k, matmul);
  return out;
}

/** Columns c of two [n, rest] row-major matrices that differ in any row. */
function changedColumns(oldB: Float32Array, newB: Float32Array, n: number, rest: number): number[] {
  const changed = new Uint8Array(rest);
  for (let r = 0; r < n; r++) {
    const base = r * rest;
    for (let c = 0; c < rest; c++) if (oldB[base + c] !== newB[base + c]) changed[c] = 1;
  }
  const out: number[] = [];
  for (let c = 0; c < rest; c++) if (changed[c]) out.push(c);
  return out;
}

/** The listed columns of a [n, rest] matrix as a compact [n, cols.length] matrix (minus `sub`'s, when given). */
function pickColumns(x: Float32Array, n: number, rest: number, cols: readonly number[], sub?: Float32Array): Float32Array {
  const k = cols.length;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const base = r * rest;
    for (let j = 0; j < k; j++) out[r * k + j] = sub ? x[base + cols[j]] - sub[base + cols[j]] : x[base + cols[j]];
  }
  return out;
}

/**
 * A low-rank update is worth it while few columns changed: the product costs n*n*k, and a
 * sweep late in the descent usually moves only a handful of units of the other permutation.
 */
const LOW_RANK_MAX_FRACTION = 0.25;

/**
 * Aligns B to A (paper Algorithm 1). See the module comment for the definitions. The steps: plan
 * the memory, start from the given permutations (else the identity), anchor a transformer's
 * residual stream, sweep until a sweep improves nothing, and report the objective per group.
 */
export async function weightMatching(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, opts: WeightMatchingOptions,
): Promise<WeightMatchingResult> {
  // Plan before plan() allocates A's axis-to-front copies.
  const memory = planMemoryUse(spec, a, b, opts);
  const planned = plan(spec, a, b);
  const allNames = Object.keys(spec.perms).sort();
  const perms = startingPermutations(spec, allNames, opts.initPerms);
  const startingDots = opts.initPerms ? undefined : opts.startingDots;
  const before = objectives(spec, a, b, perms, allNames, startingDots);
  const descent = new CoordinateDescent(spec, b, opts, memory, planned, perms, allNames);
  if (planned.heads.size > 0 && !opts.initPerms) await descent.anchorHub();
  const iterations = await descent.sweepUntilConverged();
  if (opts.signal?.aborted) throw cancelled();

  const after = objectives(spec, a, b, perms, allNames);
  const groups = groupReports(spec, allNames, perms, before.groups, after.groups);
  return { perms, iterations, objectiveBefore: before.total, objectiveAfter: after.total, objectiveFixed: before.fixed, groups };
}

/** What weight matching may hold, from the memory plan made before anything is allocated (memoryPlan.ts). */
interface MemoryUse {
  /** Hold each permutation's constant part between its solves. */
  readonly holdConstants: boolean;
  /** Bytes for cached occurrence products. */
  readonly cacheBytes: number;
  /** One solve's allocations (cost matrix, operands, a product block): kept free under the budget. */
  readonly solveBytes: number;
}

/** Without a budget: constants held and a 1 GiB cache, unchecked. */
function planMemoryUse(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, opts: WeightMatchingOptions): MemoryUse {
  if (opts.memoryBudget === undefined) return { holdConstants: true, cacheBytes: opts.cacheBytes ?? 1 << 30, solveBytes: 0 };
  let heldBytes = 0;
  const shapes = new Map<string, readonly number[]>();
  for (const t of Object.keys(spec.axes)) {
    const ta = a.get(t);
    const tb = b.get(t);
    if (ta) { shapes.set(t, ta.shape); heldBytes += bytesHeld(ta); }
    if (tb) heldBytes += bytesHeld(tb);
  }
  const memory = planWeightMatching(spec, shapes, { budget: opts.memoryBudget, heldBytes, runtimeBytes: opts.reservedBytes, counted: (t) => !isRunningStatistic(t) });
  return { holdConstants: memory.mode === 'cached', cacheBytes: opts.cacheBytes ?? memory.cacheBytes, solveBytes: memory.solveBytes };
}

/** Each permutation's start: the given one (checked: a permutation that keeps units inside their blocks), else the identity. */
function startingPermutations(spec: PermSpec, names: readonly string[], initPerms: Permutations | undefined): Record<string, Int32Array> {
  const perms: Record<string, Int32Array> = {};
  for (const p of names) {
    const init = initPerms?.[p];
    if (init) {
      checkPermutation(init, spec.perms[p], `weight matching: initial permutation \`${p}\``);
      const blocks = spec.blocks?.[p] ?? 1;
      if (blocks > 1 && blockViolation(init, blocks) !== null) {
        throw new MatchingError('BadPermutation', `weight matching: initial permutation \`${p}\` moves units between its ${blocks} blocks`);
      }
    }
    perms[p] = init ? Int32Array.from(init) : identityPermutation(spec.perms[p]);
  }
  return perms;
}

/** Per coordinate of the descent, the permutations its cost matrix depends on (sorted, each once). */
function dependenciesOf({ names, occurrences, heads }: Plan): Map<string, string[]> {
  return new Map<string, string[]>(names.map((p) => {
    const group = heads.get(p);
    const deps = group ? group.occurrences.flatMap((o) => o.dependsOn) : occurrences.get(p)!.flatMap((o) => o.dependsOn);
    return [p, [...new Set(deps)].sort()];
  }));
}

/** Each group's size, units moved and share of the objective before and after (GroupReport). */
function groupReports(
  spec: PermSpec, names: readonly string[], perms: Readonly<Record<string, Int32Array>>,
  before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>,
): GroupReport[] {
  return names.map((p) => {
    let moved = 0;
    const perm = perms[p];
    for (let i = 0; i < perm.length; i++) if (perm[i] !== i) moved++;
    return { name: p, size: spec.perms[p], moved, objectiveBefore: before.get(p)!, objectiveAfter: after.get(p)! };
  });
}

/**
 * Coordinate descent over the permutations (changed in place in `perms`), with what it keeps
 * between solves: each permutation's version (bumped when it changes), the held constant parts,
 * the cached products (on their occurrences) and the inputs' versions at each last solve.
 */
class CoordinateDescent {
  private readonly buffers = new OperandBuffers();
  private readonly versions: Map<string, number>;
  private readonly constants = new Map<string, Float32Array>();
  private readonly solvedAt = new Map<string, number[]>();
  private readonly dependencies: Map<string, string[]>;
  private readonly progress: MatchingProgress;
  private cacheLeft: number;
  /** The permutation `anchorHub` started (the residual stream), solved last in the first sweep. */
  private hub: string | undefined;

  constructor(
    private readonly spec: PermSpec,
    private readonly b: HeldTensorMap,
    private readonly opts: WeightMatchingOptions,
    private readonly memory: MemoryUse,
    private readonly planned: Plan,
    private readonly perms: Record<string, Int32Array>,
    allNames: readonly string[],
  ) {
    this.versions = new Map<string, number>(allNames.map((p) => [p, 0]));
    this.dependencies = dependenciesOf(planned);
    this.cacheLeft = memory.cacheBytes;
    this.progress = new MatchingProgress(spec, opts, planned.names.length);
  }

  /** The operands of occurrence `o` in reusable buffers (used at once, never kept). */
  private aOperand(o: Occurrence): Float32Array {
    return o.aFront(this.buffers.take('a', o.n * o.rest));
  }

  private bOperand(o: Occurrence, axisPerms: readonly (Int32Array | null)[], slot: 'b' | 'bOld' = 'b'): Float32Array {
    return bFrontWith(axisPerms, o.axis, this.b.get(o.tensor)!, this.buffers.take(slot, o.n * o.rest));
  }

  private bump(name: string): void {
    this.versions.set(name, this.versions.get(name)! + 1);
  }

  private inputVersions(p: string): number[] {
    return this.dependencies.get(p)!.map((q) => this.versions.get(q)!);
  }

  /**
   * Transformers (specs with head groups): the residual stream's permutation acts on every
   * block, and from the identity the descent stalls far from the optimum (trained tiny GPT-2:
   * objective 655 where 2296 was reachable). The paper's MLPs are anchored by their unpermuted
   * input; here the embeddings and norms anchor the hub, the permutation most others depend on:
   * it starts from its own solve on the tensors no other permutation touches.
   */
  async anchorHub(): Promise<void> {
    const { spec, perms, planned: { names, heads, occurrences } } = this;
    this.hub = undefined;
    let hub: string | undefined;
    let most = 0;
    for (const p of names) {
      if (heads.has(p) || !occurrences.get(p)!.some((o) => o.dependsOn.length === 0)) continue;
      const dependents = names.filter((q) => this.dependencies.get(q)!.includes(p)).length;
      if (dependents > most) { most = dependents; hub = p; }
    }
    if (hub === undefined) return;
    const n = spec.perms[hub];
    const free = new Float32Array(n * n);
    for (const o of occurrences.get(hub)!) {
      if (o.dependsOn.length === 0) await addProductInto(free, this.aOperand(o), this.bOperand(o, bAxisPerms(spec, perms, o, false)), n, o.rest, this.opts.matmul);
    }
    perms[hub] = (await solveGroup(free, n, hub, { signal: this.opts.signal })).rowToCol;
    this.bump(hub);
    this.hub = hub;
  }

  /** Sweeps in a seeded random order until one improves nothing, or `maxIter` of them; returns the sweeps run. */
  async sweepUntilConverged(): Promise<number> {
    const { opts } = this;
    const random = mulberry32(opts.seed);
    let iterations = 0;
    for (let sweep = 0; sweep < opts.maxIter; sweep++) {
      let improved = false;
      const order = shuffleInPlace(this.planned.names.slice(), random);
      // After the anchor, the first sweep solves the hub last: every permutation that depends on
      // it is first solved for the anchored value, and the hub's own solve then sees them all.
      // Visited earlier, its inputs would change after its solve and sweep 2 would solve it again
      // (at 7B, 291 products read from disk) only to confirm it.
      const { hub } = this;
      if (sweep === 0 && hub !== undefined) order.push(...order.splice(order.indexOf(hub), 1));
      for (let step = 0; step < order.length; step++) {
        // Yield so a cancel message can be delivered, then honour it between solves.
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
        if (opts.signal?.aborted) throw cancelled();
        if (await this.visit(order[step], sweep, step)) improved = true;
      }
      iterations = sweep + 1;
      this.progress.sweepDone(sweep, !improved ? 'converged' : iterations === opts.maxIter ? 'last sweep' : false);
      if (!improved) break;
    }
    return iterations;
  }

  /** One coordinate of the descent: solved again unless its inputs are unchanged; true when it improved. */
  private async visit(p: string, sweep: number, step: number): Promise<boolean> {
    // P's cost matrix depends only on the permutations its occurrences depend on: when none
    // changed since P was last solved, P is still optimal for it and the solve is skipped.
    const inputs = this.inputVersions(p);
    const seen = this.solvedAt.get(p);
    if (seen && seen.every((v, k) => v === inputs[k])) return false;
    this.progress.betweenSolves(sweep, step);
    const group = this.planned.heads.get(p);
    this.progress.begin(sweep, step, p, group ? group.occurrences.length : this.planned.occurrences.get(p)!.length);
    const times = { productSeconds: 0, assignmentSeconds: 0 };
    const improved = group ? await this.solveHeads(group, times) : await this.solvePermutation(p, times);
    this.solvedAt.set(p, this.inputVersions(p));
    this.opts.onSolved?.({ name: p, units: this.spec.perms[p], sweep, ...times });
    return improved;
  }

  /** A whole-axis permutation: its cost matrix, its assignment, adopted when it improves P's part of the objective. */
  private async solvePermutation(p: string, times: { productSeconds: number; assignmentSeconds: number }): Promise<boolean> {
    const { opts, progress } = this;
    const n = this.spec.perms[p];
    const started = performance.now();
    const cost = await this.costMatrix(p);
    const held = this.perms[p];
    let oldValue = 0;
    for (let i = 0; i < n; i++) oldValue += cost[i * n + held[i]];
    const built = performance.now();
    times.productSeconds = (built - started) / 1000;
    const solved = await solveGroup(cost, n, p, { signal: opts.signal, clock: progress.clock, onProgress: opts.onProgress ? (s) => progress.solving(s) : undefined });
    times.assignmentSeconds = (performance.now() - built) / 1000;
    if (!(solved.value > oldValue + 1e-12)) return false;
    this.perms[p] = solved.rowToCol;
    this.bump(p);
    return true;
  }

  /** A head group's step: per-structure similarities S, then the pairwise inner / outer solve. */
  private async solveHeads(group: HeadGroup, times: { productSeconds: number; assignmentSeconds: number }): Promise<boolean> {
    const { perms } = this;
    const started = performance.now();
    const structs = await headStructures(this.spec, this.b, perms, group, false, this.opts.matmul, () => this.progress.partDone());
    const value = headGroupValue(structs, perms[group.outer], new Map(Object.entries(perms)), group.members);
    const built = performance.now();
    times.productSeconds = (built - started) / 1000;
    const solved = solveHeadGroup(structs, group.blocks, group.members);
    times.assignmentSeconds = (performance.now() - built) / 1000;
    if (!(solved.value > value + 1e-12)) return false;
    perms[group.outer] = solved.outer;
    for (const [name, value] of solved.inner) perms[name] = value;
    for (const name of [group.outer, ...group.members.keys()]) this.bump(name);
    return true;
  }

  /** P's cost matrix: its constant part, then each contribution that depends on other permutations. */
  private async costMatrix(p: string): Promise<Float32Array> {
    const n = this.spec.perms[p];
    const cost = await this.constantPart(p, n);
    for (const o of this.planned.occurrences.get(p)!) {
      if (o.dependsOn.length > 0) await this.addDependentProduct(o, n, cost);
    }
    return cost;
  }

  /**
   * A fresh cost matrix holding the contributions that no other permutation changes. Both
   * operands with the axis in front: B's raw layout is only right when the axis is 0 (an
   * embedding [vocab, d] or a classifier [classes, d] has P on axis 1). Held between solves when
   * P also has changing contributions and the memory plan allows; a P with only these is solved
   * once, so nothing is held.
   */
  private async constantPart(p: string, n: number): Promise<Float32Array> {
    const occs = this.planned.occurrences.get(p)!;
    const hasFree = occs.some((o) => o.dependsOn.length === 0);
    const hold = this.memory.holdConstants && hasFree && occs.some((o) => o.dependsOn.length > 0);
    let constant = this.constants.get(p);
    // Held from an earlier solve: its products count as done at once.
    if (constant) for (const o of occs) if (o.dependsOn.length === 0) this.progress.partDone();
    if (!constant && hold) {
      constant = new Float32Array(n * n);
      await this.addFreeProducts(occs, n, constant);
      this.constants.set(p, constant);
    }
    if (constant) return constant.slice();
    const cost = new Float32Array(n * n);
    if (hasFree) await this.addFreeProducts(occs, n, cost);
    return cost;
  }

  private async addFreeProducts(occs: readonly Occurrence[], n: number, target: Float32Array): Promise<void> {
    for (const o of occs) {
      if (o.dependsOn.length === 0) {
        await addProductInto(target, this.aOperand(o), this.bOperand(o, bAxisPerms(this.spec, this.perms, o, false)), n, o.rest, this.opts.matmul);
        this.progress.partDone();
      }
    }
  }

  /**
   * Adds occurrence `o`'s product under the current permutations to `cost`: the cached one when
   * its inputs did not change, updated by the changed columns alone when few moved, else
   * recomputed (and cached while the cache and the measured residency allow).
   */
  private async addDependentProduct(o: Occurrence, n: number, cost: Float32Array): Promise<void> {
    const { spec, perms, opts } = this;
    const now = o.dependsOn.map((q) => this.versions.get(q)!);
    if (o.cached && o.cachedVersions!.every((v, k) => v === now[k])) {
      addInto(cost, o.cached);
      this.progress.partDone();
      return;
    }
    const axisPermsNow = bAxisPerms(spec, perms, o, false);
    const bNow = this.bOperand(o, axisPermsNow);
    if (o.cached && o.cachedAxisPerms) {
      // The cached product is A . B_old^T; only the columns whose B values moved contribute
      // to the difference: A[:, S] . (B_new - B_old)[:, S]^T (exact up to rounding).
      const bOld = this.bOperand(o, o.cachedAxisPerms, 'bOld');
      const cols = changedColumns(bOld, bNow, n, o.rest);
      if (cols.length <= LOW_RANK_MAX_FRACTION * o.rest) {
        if (cols.length > 0) {
          await addProductInto(o.cached, pickColumns(this.aOperand(o), n, o.rest, cols), pickColumns(bNow, n, o.rest, cols, bOld), n, cols.length, opts.matmul);
        }
        o.cachedAxisPerms = axisPermsNow;
        o.cachedVersions = now;
        addInto(cost, o.cached);
        this.progress.partDone();
        return;
      }
    }
    const bytes = 4 * n * n;
    if (o.cached || (this.cacheLeft >= bytes && this.residencyAllows(bytes))) {
      // Cached (or replacing a cached one): the product is kept for later solves.
      if (o.cached) {
        o.cached.fill(0);
        await addProductInto(o.cached, this.aOperand(o), bNow, n, o.rest, opts.matmul);
      } else {
        this.cacheLeft -= bytes;
        o.cached = await productOf(this.aOperand(o), bNow, n, o.rest, opts.matmul);
      }
      addInto(cost, o.cached);
      o.cachedVersions = now;
      o.cachedAxisPerms = axisPermsNow;
    } else {
      // Beyond the cache: summed straight into the cost matrix, recomputed at every solve.
      await addProductInto(cost, this.aOperand(o), bNow, n, o.rest, opts.matmul);
    }
    this.progress.partDone();
  }

  /** Whether `bytes` more fit the budget beside what the process holds now and one solve. */
  private residencyAllows(bytes: number): boolean {
    const { memoryBudget, residentBytes } = this.opts;
    return memoryBudget === undefined || residentBytes === undefined || residentBytes() + bytes + this.memory.solveBytes <= memoryBudget;
  }
}

/**
 * Weight matching's progress: a line per sweep, and inside the permutation being solved, its
 * products (one per tensor it acts on) and then its assignment, reported at most once a second
 * with the group's own time left (a Llama MLP of 5632 units takes tens of seconds, so the step
 * count alone would sit still).
 */
class MatchingProgress {
  readonly clock: () => number;
  private lastReport = 0;
  private sweep = 0;
  private step = 0;
  private name = '';
  private n = 0;
  private parts = 1;
  private done = 0;
  private started = 0;

  constructor(private readonly spec: PermSpec, private readonly opts: WeightMatchingOptions, private readonly total: number) {
    this.clock = opts.clock ?? Date.now;
  }

  private report(sweep: number, done: number, finished: 'converged' | 'last sweep' | false, within = 0, detail = ''): void {
    const { total } = this;
    this.opts.onProgress?.({
      stage: 'weight-matching', iteration: sweep + 1,
      fraction: finished ? 1 : matchingFraction(sweep, (done + within) / Math.max(1, total), this.opts.maxIter),
      message: `Weight matching: sweep ${sweep + 1}, ${done} of ${total} permutations${finished ? `, ${finished}` : ''}${detail}`,
    });
  }

  /** Before a solve (not the sweep's first): the sweep's count, at most once a second. */
  betweenSolves(sweep: number, step: number): void {
    const now = this.clock();
    if (this.opts.onProgress && step > 0 && now - this.lastReport >= 1000) {
      this.lastReport = now;
      this.report(sweep, step, false);
    }
  }

  begin(sweep: number, step: number, name: string, parts: number): void {
    this.sweep = sweep;
    this.step = step;
    this.name = name;
    this.n = this.spec.perms[name];
    this.parts = parts + 1;
    this.done = 0;
    this.started = this.clock();
  }

  partDone(): void {
    this.done = Math.min(this.parts - 1, this.done + 1);
    const now = this.clock();
    if (!this.opts.onProgress || now - this.lastReport < 1000) return;
    this.lastReport = now;
    const within = this.done / this.parts;
    // The products' own rate, for the products left (the assignment reports its own).
    const seconds = secondsLeftAtRate(now - this.started, this.done / Math.max(1, this.parts - 1));
    const left = seconds !== undefined ? formatTimeLeft(seconds) : '';
    if (this.done < this.parts - 1) {
      this.report(this.sweep, this.step, false, within, `; ${this.subject()}: ${this.done} of ${this.parts - 1} products${left ? `, ${left} for them` : ''}`);
    }
  }

  /** What is being solved: "P_x (n units)", out of core "layer 12 MLP (n units) — reading from disk". */
  private subject(): string {
    return this.opts.readsFromDisk ? `${permutationWords(this.name)} (${this.n} units) — reading from disk` : `${this.name} (${this.n} units)`;
  }

  /** Inside the assignment: its rows and its own estimate (the products' rate says nothing about it). */
  solving(s: AssignmentProgress): void {
    this.lastReport = this.clock();
    const within = (this.parts - 1 + s.rowsDone / Math.max(1, s.n)) / this.parts;
    const left = s.secondsLeft === undefined ? '' : `, ${formatTimeLeft(s.secondsLeft)} for it`;
    const what = s.phase === 'reduction' ? 'assignment, first passes' : `assignment, ${s.rowsDone.toLocaleString('en-US')} of ${s.n.toLocaleString('en-US')} rows`;
    this.report(this.sweep, this.step, false, within, `; ${this.opts.readsFromDisk ? `${permutationWords(this.name)} (${this.n} units)` : `${this.name} (${this.n} units)`}: ${what}${left}`);
  }

  /** A sweep's last line: how far it got and, at the end, why it stopped. */
  sweepDone(sweep: number, finished: 'converged' | 'last sweep' | false): void {
    this.lastReport = this.clock();
    this.report(sweep, this.total, finished);
  }
}

/**
 * Fraction of weight matching done after `sweeps` whole sweeps and `part` of the next. The
 * number of sweeps until convergence is not known in advance; later sweeps re-solve only the
 * permutations whose inputs moved, so each sweep is taken to cost half the one before (an
 * estimate, for an ETA), never less than the share of the `maxIter` cap already run.
 */
export function matchingFraction(sweeps: number, part: number, maxIter: number): number {
  const done = sweeps + part;
  return Math.min(1, Math.max(1 - 0.5 ** done, done / maxIter));
}

async function solveGroup(cost: Float32Array, n: number, p: string, opts: AsyncSolveOptions): Promise<AssignmentResult> {
  try {
    return await solveAssignmentMaxAsync(cost, n, opts);
  } catch (e) {
    if (e instanceof AssignmentError && e.kind === 'NotFinite') {
      throw new MatchingError('NotFinite', `weight matching: the cost matrix of \`${p}\` is not finite: its tensors hold NaN or infinite weights`);
    }
    if (e instanceof AssignmentError && e.kind === 'Cancelled') throw cancelled();
    throw e;
  }
}

/** Total objective and each group's share (see GroupReport), for B aligned by `perms` (a tensor's term taken from `known` when there). */
function objectives(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations, names: readonly string[], known?: ReadonlyMap<string, number>,
): { total: number; fixed: number; groups: Map<string, number> } {
  const groups = new Map<string, number>(names.map((p) => [p, 0]));
  let total = 0;
  let fixed = 0;
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    const term = objectiveTerm(spec, tensor);
    if (term === 'excluded') continue;
    const tb = b.get(tensor)!;
    const d = known?.get(tensor) ?? permutedDot(valuesOf(a.get(tensor)!), valuesOf(tb), tb.shape, axisPermsOf(spec, perms, tensor));
    if (term === 'fixed') {
      fixed += d;
      continue;
    }
    total += d;
    for (const p of new Set(axes.flatMap(entryPermNames))) groups.set(p, groups.get(p)! + d);
  }
  return { total, fixed, groups };
}

/**
 * The similarity (cost) matrix of one group: S[i, j] = sum over the group's occurrences of
 * <A unit i, pi(B) unit j>, with every permutation in `perms` applied to B, the group's own
 * included, so B's units are in the given order. With the weight-matching result the matched
 * pairs lie on the diagonal; with identity permutations it is the "before" picture.
 * Computed with the plain-TS product (`jsMatMul`), synchronously; see `similarityMatrixWith`.
 */
export function similarityMatrix(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations, permName: string,
): Float32Array {
  const group = headGroupOf(spec, a, b, permName);
  if (group) {
    const structs = headOperands(spec, b, perms, group, true).map((h) => ({ ...h, s: matMulABt(h.a, h.b, h.size, h.rest, h.size) }));
    return headSimilarity(mergeStructures(structs), group.blocks, permName, group.members);
  }
  const { n, blocks } = similarityBlocks(spec, a, b, perms, permName);
  const out = new Float32Array(n * n);
  for (const [x, y, k] of blocks) addInto(out, matMulABt(x, y(), n, k, n));
  return out;
}

/** `similarityMatrix` with the given products (e.g. the engine's tfjs `MatMulABt`). */
export async function similarityMatrixWith(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations, permName: string, matmul: MatMulABt,
): Promise<Float32Array> {
  const group = headGroupOf(spec, a, b, permName);
  if (group) return headSimilarity(await headStructures(spec, b, perms, group, true, matmul), group.blocks, permName, group.members);
  const { n, blocks } = similarityBlocks(spec, a, b, perms, permName);
  const out = new Float32Array(n * n);
  for (const [x, y, k] of blocks) addInto(out, await matmul.abT(x, y(), n, k, n));
  return out;
}

/**
 * A per-block permutation's similarity as only the diagonal blocks of `similarityMatrix` (the
 * rest is zero: a head's dims never meet another head's): `spec.blocks[permName]` row-major
 * m × m matrices end to end, m = perms[permName] / blocks. Block g pairs A's head g with B's
 * head at g after `perms` (so with the outer permutation applied: B's head π(g)).
 */
export async function blockSimilarityWith(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations, permName: string, matmul: MatMulABt,
): Promise<Float32Array> {
  const group = headGroupOf(spec, a, b, permName);
  if (!group || !group.members.has(permName)) throw new MatchingError('BadSpec', `block similarity: \`${permName}\` is not a per-block permutation`);
  return headBlockSimilarity(await headStructures(spec, b, perms, group, true, matmul), group.blocks, permName, group.members);
}

/** The [n, k] operand pairs of one group's similarity matrix (B's operand built on demand). */
function similarityBlocks(
  spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations, permName: string,
): { n: number; blocks: [Float32Array, () => Float32Array, number][] } {
  const n = spec.perms[permName];
  if (n === undefined) throw new MatchingError('BadSpec', `similarity matrix: unknown permutation \`${permName}\``);
  const { occurrences } = plan(spec, a, b, permName);
  const blocks = (occurrences.get(permName) ?? []).map((o): [Float32Array, () => Float32Array, number] =>
    [o.aFront(), () => bFront(spec, perms, o, b.get(o.tensor)!, true), o.rest]);
  return { n, blocks };
}

/**
 * The head group `permName` belongs to (as its block permutation or an inner one), with only
 * the occurrences that involve it; undefined for a whole-axis permutation.
 */
function headGroupOf(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, permName: string): HeadGroup | undefined {
  if (spec.perms[permName] === undefined) throw new MatchingError('BadSpec', `similarity matrix: unknown permutation \`${permName}\``);
  const { heads } = plan(spec, a, b, permName);
  return [...heads.values()].find((h) => h.outer === permName || h.members.has(permName));
}

interface HeadOperands {
  readonly split: readonly number[];
  readonly perms: readonly (string | null)[];
  /** A's and B's rows of the part, [size, rest]. */
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly size: number;
  readonly rest: number;
}

/** Each block occurrence's operands: A's part rows and B's (other axes permuted; its own too when `includeOwn`). */
function headOperands(spec: PermSpec, b: HeldTensorMap, perms: Permutations, group: HeadGroup, includeOwn: boolean): HeadOperands[] {
  return group.occurrences.map((o) => {
    const bF = bFront(spec, perms, o, b.get(o.tensor)!, includeOwn);
    const rows = (x: Float32Array): Float32Array => x.subarray(o.offset * o.rest, (o.offset + o.size) * o.rest);
    return { split: o.part.split, perms: o.part.perms, a: rows(o.aFront()), b: rows(bF), size: o.size, rest: o.rest };
  });
}

/** Sums the similarities of parts with the same structure (GPT-2's q and k; v and c_proj). */
function mergeStructures(parts: readonly (HeadOperands & { s: Float32Array })[]): HeadStructure[] {
  const byKey = new Map<string, { split: readonly number[]; perms: readonly (string | null)[]; s: Float32Array }>();
  for (const p of parts) {
    const key = JSON.stringify([p.split, p.perms]);
    const known = byKey.get(key);
    if (known) addInto(known.s, p.s);
    else byKey.set(key, { split: p.split, perms: p.perms, s: p.s.slice() });
  }
  return [...byKey.values()];
}

/** S per block structure of a head group: sum of A_part . B'_part^T over its occurrences. */
async function headStructures(
  spec: PermSpec, b: HeldTensorMap, perms: Permutations, group: HeadGroup, includeOwn: boolean, matmul: MatMulABt, onPart?: () => void,
): Promise<HeadStructure[]> {
  const byKey = new Map<string, { split: readonly number[]; perms: readonly (string | null)[]; s: Float32Array }>();
  for (const h of headOperands(spec, b, perms, group, includeOwn)) {
    const key = JSON.stringify([h.split, h.perms]);
    let st = byKey.get(key);
    if (!st) {
      st = { split: h.split, perms: h.perms, s: new Float32Array(h.size * h.size) };
      byKey.set(key, st);
    }
    await addProductInto(st.s, h.a, h.b, h.size, h.rest, matmul);
    onPart?.();
  }
  return [...byKey.values()];
}
