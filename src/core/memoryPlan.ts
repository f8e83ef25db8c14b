/**
 * Memory plan of weight matching (issues 10 and 14): the bytes of every allocation that grows
 * with the problem, computed from tensor shapes alone, before anything is allocated. The
 * budget is the whole process's (memoryBudget.ts: `--memory-budget`, setting `rebasin.memoryBudget`,
 * default half of physical memory); the float32 copies of both models already held count against it.
 *
 * Allocations of weight matching (src/core/matching/weightMatching.ts), all float32:
 * - per solve of permutation P (n units): its cost matrix, n*n; plus, for the largest
 *   (tensor, axis) occurrence of P, `OPERAND_COPIES` float32 copies of the tensor (see there)
 *   and two blocks of the product's rows (at most `PRODUCT_BLOCK_BYTES` each: the backend's
 *   result and its copy into JavaScript);
 * - held for the whole run: per permutation that has both kinds of occurrence, an n*n sum of
 *   the contributions that no other permutation changes ("constant");
 * - the cache of contributions that depend on other permutations: whatever the budget leaves.
 * When the held constants do not fit, they are recomputed at every solve instead
 * ("recompute" mode); when even one solve does not fit, the plan refuses, naming the permutation
 * and the bytes it needs. The assignment solver itself needs O(n) (lap.ts).
 */
import type { PermSpec } from './checkpoint';
import { entryPermNames, isBlockAxis } from './blockAxis';
import { MemoryBudgetError } from './memoryBudget';
import { formatBytes } from '../../shared/bytes';

const F32 = 4;

/**
 * Float32 copies of one tensor counted for its product: A's and B's operands with the axis in
 * front and B's operand under the permutations a cached product was computed with (a low-rank
 * update rebuilds it), in buffers reused from product to product; the backend's copies (tfjs
 * copies its inputs: B and Bᵀ, then A and Bᵀ); and one for copies the garbage collector has not
 * freed yet (picked columns, results).
 */
export const OPERAND_COPIES = 6;

/** Rows of a cost-matrix product are computed in blocks of at most this many bytes of result. */
export const PRODUCT_BLOCK_BYTES = 64 * 1024 * 1024;

/** Per-permutation figures of the plan. */
export interface PermutationMemory {
  readonly name: string;
  readonly size: number;
  /** Bytes one solve allocates: cost matrix, the largest occurrence's operand copies, two product blocks. */
  readonly solveBytes: number;
  /** Bytes of the held constant part (0 when P has no such part worth holding). */
  readonly constantBytes: number;
}

export interface WeightMatchingMemoryPlan {
  /** Bytes already held by the caller (the loaded models), counted against the budget. */
  readonly heldBytes: number;
  /** Constants held ('cached' mode) or 0 ('recompute' mode). */
  readonly constantBytes: number;
  /** The largest single solve. */
  readonly solveBytes: number;
  /** Room left for cached contributions (never negative). */
  readonly cacheBytes: number;
  /** 'cached': constants held, contributions cached up to cacheBytes; 'recompute': nothing held between solves. */
  readonly mode: 'cached' | 'recompute';
  readonly perms: readonly PermutationMemory[];
}

/**
 * Why align's equivalence check does not fit, or null when it does. It holds π(B) and the
 * backend's copy of one model beside A and B (4 float32 models of `modelBytes`), and it comes
 * after matching, beside what the process holds then (`residentBytes`, measured: the runtime, A
 * and B, what matching left): counted only as 4 models, a 77 MB-per-model Llama under 420 MB
 * peaked at 549 MB in the check.
 */
export function equivalenceOverBudget(modelBytes: number, residentBytes: number, budget: number): string | null {
  if (4 * modelBytes > budget) {
    return `π(B) and a forward pass beside A and B need ${formatBytes(4 * modelBytes)}, over the memory budget of ${formatBytes(budget)} (--memory-budget)`;
  }
  if (residentBytes + 2 * modelBytes > budget) {
    return `π(B) and a forward pass need ${formatBytes(2 * modelBytes)} beside the ${formatBytes(residentBytes)} the process holds, over the memory budget of ${formatBytes(budget)} (--memory-budget)`;
  }
  return null;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, s) => p * s, 1);
}

/**
 * Plans weight matching's memory for `spec` over tensors of the given shapes (only the spec's
 * tensors are read; running statistics excluded from the objective are skipped by `counted`).
 * Throws MemoryBudgetError when the largest solve does not fit in `budget - heldBytes - runtimeBytes`.
 * `runtimeBytes` is what the process holds besides the models, measured (Node, the tfjs backend,
 * its worker threads): a 77 MB-per-model Llama under a 300 MB budget peaked at 458 MB when only
 * the models and the solve were counted.
 */
export function planWeightMatching(
  spec: PermSpec,
  shapes: ReadonlyMap<string, readonly number[]>,
  opts: {
    readonly budget: number; readonly heldBytes: number; readonly runtimeBytes?: number; readonly counted?: (tensor: string) => boolean;
    /** Said after the models' bytes in a refusal (out of core: how they are held). */
    readonly heldNote?: string;
  },
): WeightMatchingMemoryPlan {
  const largestOperand = new Map<string, number>();
  const hasFree = new Set<string>();
  const hasDependent = new Set<string>();
  const blockAxisUnits = new Map<string, number>();
  const headSimilarityBytes = new Map<string, number>();
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    if (opts.counted && !opts.counted(tensor)) continue;
    const shape = shapes.get(tensor);
    if (!shape) continue;
    const bytes = sizeOf(shape) * F32;
    axes.forEach((entry, axis) => {
      // A block axis's permutations are solved together from an axis x axis similarity (heads).
      if (isBlockAxis(entry)) {
        for (const p of entryPermNames(entry)) blockAxisUnits.set(p, Math.max(blockAxisUnits.get(p) ?? 0, shape[axis]));
        // A head group's step holds one part x part similarity per block structure at once
        // (bounded by one per part): summed on the group's block permutation.
        for (const part of entry.parts) {
          const outer = part.perms[0];
          const size = part.split.reduce((x, y) => x * y, 1);
          if (outer !== null) headSimilarityBytes.set(outer, (headSimilarityBytes.get(outer) ?? 0) + size * size * F32);
        }
      }
      for (const p of entryPermNames(entry)) {
        largestOperand.set(p, Math.max(largestOperand.get(p) ?? 0, bytes));
        if (axes.some((q, d) => d !== axis && q !== null)) hasDependent.add(p);
        else hasFree.add(p);
      }
    });
  }
  const perms: PermutationMemory[] = Object.keys(spec.perms).sort().map((name) => {
    const n = Math.max(spec.perms[name], blockAxisUnits.get(name) ?? 0);
    const cost = n * n * F32;
    // The largest occurrence's copies (a bound: A's is its own data for a float32 tensor with the axis at 0).
    const operand = OPERAND_COPIES * (largestOperand.get(name) ?? 0);
    // The product of the largest occurrence, [n, rest] x [n, rest]^T, by row blocks of the result (twice: backend and JavaScript).
    const block = 2 * Math.min(cost, Math.max(PRODUCT_BLOCK_BYTES, n * F32));
    const solveBytes = Math.max(cost, headSimilarityBytes.get(name) ?? 0) + operand + block;
    const constantBytes = hasFree.has(name) && hasDependent.has(name) && !blockAxisUnits.has(name) ? cost : 0;
    return { name, size: n, solveBytes, constantBytes };
  });
  const solveBytes = perms.reduce((m, p) => Math.max(m, p.solveBytes), 0);
  const constants = perms.reduce((s, p) => s + p.constantBytes, 0);
  const runtime = Math.max(0, opts.runtimeBytes ?? 0);
  const available = opts.budget - opts.heldBytes - runtime;
  if (solveBytes > available) {
    const worst = perms.reduce((w, p) => (p.solveBytes > w.solveBytes ? p : w));
    const needed = opts.heldBytes + runtime + worst.solveBytes;
    const runtimeText = runtime > 0 ? `, the process's runtime ${formatBytes(runtime)}` : '';
    throw new MemoryBudgetError(
      `weight matching: permutation \`${worst.name}\` (${worst.size} units) needs ${formatBytes(needed)} ` +
      `(its ${worst.size}x${worst.size} cost matrix is ${formatBytes(worst.size * worst.size * F32)}, the models ${formatBytes(opts.heldBytes)}${opts.heldNote ?? ''}${runtimeText}), ` +
      `over the memory budget of ${formatBytes(opts.budget)}; raise it with --memory-budget (setting rebasin.memoryBudget) or use a smaller model`,
      worst.name, needed, opts.budget,
    );
  }
  const mode = solveBytes + constants <= available ? 'cached' : 'recompute';
  const constantBytes = mode === 'cached' ? constants : 0;
  return {
    heldBytes: opts.heldBytes, constantBytes, solveBytes,
    cacheBytes: Math.max(0, available - solveBytes - constantBytes), mode, perms,
  };
}

/**
 * How weight matching holds the pair (issue 24): 'held' (both models in memory as stored) when
 * that plan fits the budget, else 'streamed' (out of core: tensors read from their files per
 * product, the readers holding `streamedBytes` at most) when that one fits; `streamedBytes`
 * undefined means the checkpoints cannot be read on demand. `outOfCore` asks for 'streamed'
 * whatever fits. Throws the MemoryBudgetError of the last plan tried when none fits.
 */
export function chooseHolding(
  spec: PermSpec,
  shapes: ReadonlyMap<string, readonly number[]>,
  opts: {
    readonly budget: number; readonly heldBytes: number; readonly streamedBytes?: number; readonly outOfCore?: boolean;
    readonly runtimeBytes?: number; readonly counted?: (tensor: string) => boolean;
  },
): { holding: 'held' | 'streamed'; plan: WeightMatchingMemoryPlan } {
  const streamed = (): { holding: 'streamed'; plan: WeightMatchingMemoryPlan } =>
    ({ holding: 'streamed', plan: planWeightMatching(spec, shapes, { ...opts, heldBytes: opts.streamedBytes!, heldNote: ' at a time, read from disk tensor by tensor' }) });
  if (opts.outOfCore && opts.streamedBytes !== undefined) return streamed();
  try {
    return { holding: 'held', plan: planWeightMatching(spec, shapes, opts) };
  } catch (e) {
    if (!(e instanceof MemoryBudgetError) || opts.streamedBytes === undefined) throw e;
    return streamed();
  }
}
