/**
 * Memory plan of activation matching on a transformer language model (issues 10 and 13):
 * the bytes of every allocation that grows with the model, from its shapes alone, before the
 * models run, and the passes over the token data that keep them under the memory budget.
 *
 * What lmActivationMatching (engine/compute/activationMatching.ts) holds, per set of n units:
 * - running sums, float64: sum a, sum b, sum a^2, sum b^2 (n each) and A^T B (n x n):
 *   8 (n^2 + 4n) bytes. One set for the residual stream, one per block for its MLP units, one
 *   per block and attention feature (heads' outputs, q, k, v) for its heads;
 * - per batch of s sequences of T tokens, float32: the features kept from A's and B's forward
 *   passes until both have run, 2 x 4 x s T x (features' widths; the residual stream is sampled
 *   `samples` times per pass), plus the forward pass's own intermediates
 *   (`forwardBytesPerSequence` per sequence) and, while one feature is added (its products are
 *   freed before the next), its A^T B product and read-back (2 x 4 n^2), a transposed copy of
 *   A's features and a squared copy of A's or B's (2 x 4 s T n);
 * - at the end of a pass, to solve: a float64 correlation matrix (8 n^2) and, for heads, a
 *   float32 copy of each attention feature's (4 n^2 each).
 * The models' weights are not in this plan (the caller holds them either way), as for an
 * evaluation's batch plan.
 *
 * Over the budget, the blocks are split into passes: each pass runs every batch of the data
 * through both models but keeps the features and sums of its blocks only (the residual stream
 * in the first), then solves their permutations and frees the sums. The batches are the same in
 * every pass, so the sums, hence the permutations, are those of a single pass.
 */
import { formatBytes } from '../../shared/bytes';
import { MemoryBudgetError } from './memoryBudget';

const F32 = 4;
const F64 = 8;

/** One permuted set of units a feature samples. */
export interface LmActivationUnits {
  /** The spec permutation it belongs to (for heads: the block's head permutation). */
  readonly perm: string;
  /** Width of the feature (units per token). */
  readonly units: number;
  /** Every permutation the feature's sums solve (default: `perm`); one shared by two blocks keeps them in one pass. */
  readonly perms?: readonly string[];
}

/** The shapes the plan reads: widths of the matched features and the token data's size. */
export interface LmActivationShapes {
  /** Tokens per sequence (T). */
  readonly tokensPerSequence: number;
  /** Sequences in the token data. */
  readonly sequences: number;
  /** Bytes of the forward pass's own intermediates per sequence of T tokens, both models' passes in turn. */
  readonly forwardBytesPerSequence: number;
  /** The residual stream, sampled `samples` times per forward pass (embeddings, each attention, each block). */
  readonly residual?: LmActivationUnits & { readonly samples: number };
  /** Per block: its MLP units and its attention features (heads' outputs, q, k, v) that are matched. */
  readonly blocks: readonly { readonly mlp?: LmActivationUnits; readonly heads: readonly LmActivationUnits[] }[];
}

/** One pass over the token data. */
export interface LmActivationPass {
  /** Whether this pass accumulates the residual stream (the first one does). */
  readonly residual: boolean;
  /** Blocks (0-based) whose MLP and heads this pass accumulates, ascending. */
  readonly blocks: readonly number[];
  /** Bytes of this pass's running sums (exactly what its accumulators allocate). */
  readonly statisticsBytes: number;
  /** Bytes of the features kept per batch of one sequence (both models), without the forward pass. */
  readonly featureBytesPerSequence: number;
  /** Peak bytes of this pass: sums plus the larger of a batch's working set and the solve's. */
  readonly peakBytes: number;
}

export interface LmActivationMemoryPlan {
  readonly sequencesPerBatch: number;
  readonly passes: readonly LmActivationPass[];
  /** Running sums of all features at once (what a single pass holds). */
  readonly statisticsBytes: number;
  /** The largest pass's peak. */
  readonly peakBytes: number;
  readonly budget: number;
}

/** Bytes of the running sums of one feature of n units. */
export function statisticsBytes(n: number): number {
  return F64 * (n * n + 4 * n);
}

/** A unit of work: the residual stream or one block; passes are runs of consecutive items. */
interface Item {
  readonly residual: boolean;
  readonly blocks: readonly number[];
  /** Each feature's units and how many times a forward pass samples it. */
  readonly features: readonly (LmActivationUnits & { readonly samples: number; readonly head: boolean })[];
}

function itemsOf(shapes: LmActivationShapes): Item[] {
  const items: Item[] = [];
  if (shapes.residual) items.push({ residual: true, blocks: [], features: [{ ...shapes.residual, head: false }] });
  shapes.blocks.forEach((b, i) => {
    const features = [
      ...(b.mlp ? [{ ...b.mlp, samples: 1, head: false }] : []),
      ...b.heads.map((h) => ({ ...h, samples: 1, head: true })),
    ];
    if (features.length) items.push({ residual: false, blocks: [i], features });
  });
  // A permutation fed by features of two items (a custom spec sharing one across blocks) needs
  // all its samples in the same sums: then everything is one item, one pass.
  const owner = new Map<string, number>();
  const shared = items.some((it, k) => it.features.some((f) => (f.perms ?? [f.perm]).some((p) => {
    const o = owner.get(p);
    owner.set(p, k);
    return o !== undefined && o !== k;
  })));
  if (shared && items.length > 1) {
    return [{ residual: items.some((it) => it.residual), blocks: items.flatMap((it) => it.blocks), features: items.flatMap((it) => it.features) }];
  }
  return items;
}

function peakOf(items: readonly Item[], shapes: LmActivationShapes, s: number): { statisticsBytes: number; featureBytesPerSequence: number; peakBytes: number } {
  const features = items.flatMap((it) => it.features);
  const tokens = s * shapes.tokensPerSequence;
  const sums = features.reduce((acc, f) => acc + statisticsBytes(f.units), 0);
  const widest = features.reduce((m, f) => Math.max(m, f.units), 0);
  const featureBytesPerSequence = 2 * F32 * shapes.tokensPerSequence * features.reduce((acc, f) => acc + f.samples * f.units, 0);
  const batch = s * (featureBytesPerSequence + shapes.forwardBytesPerSequence) + 2 * F32 * widest * widest + 2 * F32 * tokens * widest;
  const headCopies = items.reduce((m, it) => Math.max(m, it.features.filter((f) => f.head).reduce((acc, f) => acc + F32 * f.units * f.units, 0)), 0);
  const solve = F64 * widest * widest + headCopies;
  return { statisticsBytes: sums, featureBytesPerSequence, peakBytes: sums + Math.max(batch, solve) };
}

/**
 * Plans activation matching's passes under `budget` bytes, batches of at most
 * `sequencesPerBatch` sequences (fewer when one block's working set needs it). Throws
 * MemoryBudgetError, naming the permutation with the largest sums and the bytes needed, when
 * even one block (or the residual stream) does not fit with batches of one sequence.
 */
export function planLmActivationMatching(shapes: LmActivationShapes, budget: number, sequencesPerBatch = 16, heldBytes = 0): LmActivationMemoryPlan {
  const items = itemsOf(shapes);
  const all = peakOf(items, shapes, 1);
  // The largest batch (at most the requested one) with which every item fits on its own, beside
  // what the process holds (`heldBytes`: measured, with the models on the backend).
  let s = Math.max(1, Math.min(sequencesPerBatch, shapes.sequences));
  const fits = (its: readonly Item[], k: number) => heldBytes + peakOf(its, shapes, k).peakBytes <= budget;
  while (s > 1 && !items.every((it) => fits([it], s))) s--;
  const tooBig = items.find((it) => !fits([it], s));
  if (tooBig) {
    const worst = tooBig.features.reduce((w, f) => (f.units > w.units ? f : w));
    const needed = peakOf([tooBig], shapes, 1).peakBytes;
    const what = tooBig.residual && tooBig.blocks.length === 0 ? 'the residual stream' : tooBig.blocks.length === 1 ? `block ${tooBig.blocks[0]}` : 'its shared permutations';
    throw new MemoryBudgetError(
      `activation matching: ${worst.perm} needs ${formatBytes(needed)} of statistics and features (${what}, one sequence per batch` +
      `${heldBytes > 0 ? `, beside the ${formatBytes(heldBytes)} the process and both models hold` : ''}); ` +
      `the memory budget is ${formatBytes(budget)} (--memory-budget)`,
      worst.perm, needed, budget,
    );
  }
  const passes: LmActivationPass[] = [];
  let current: Item[] = [];
  const close = () => {
    if (!current.length) return;
    passes.push({ residual: current.some((it) => it.residual), blocks: current.flatMap((it) => it.blocks), ...peakOf(current, shapes, s) });
    current = [];
  };
  for (const it of items) {
    if (current.length && !fits([...current, it], s)) close();
    current.push(it);
  }
  close();
  return {
    sequencesPerBatch: s,
    passes,
    statisticsBytes: all.statisticsBytes,
    peakBytes: passes.reduce((m, p) => Math.max(m, p.peakBytes), 0),
    budget,
  };
}
