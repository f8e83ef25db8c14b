/**
 * Activation matching (Git Re-Basin section 3.1): run A and B on the same data and, for each
 * permutation, match B's units to A's by the correlation of their post-activation features,
 * one linear assignment (maximise) per permutation. Features are streamed in batches: only
 * running sums are kept (sum a, sum b, sum a^2, sum b^2, A^T B). Conv features are pooled over
 * spatial positions (each position is one sample of the channel). Features on a block axis
 * (a ViT's q, k, v and heads' outputs) are solved per group of blocks as the language models'
 * heads are (`assignBlocks`). Permutations no hidden activation reveals (e.g. a residual stream
 * not exposed) stay the identity.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BlockPart, PermSpec, Progress, TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import { AssignmentError, solveAssignmentMaxAsync } from '../../core/assignment/lap';
import { formatTimeLeft } from '../../core/progressText';
import { isBlockAxis } from '../../core/blockAxis';
import { throwIfCancelled } from '../errors';
import { toBatches, type Batches } from './evaluate';
import { assertFeaturesFit } from './dataFit';
import type { ModelConfig } from './modelConfig';
import type { Model } from './model';
import { buildModel } from '../families/build';
import type { LmFeatureHooks, LmModel } from '../lm/layers';
import type { LmFeatureAxes, LmHeadAxes } from '../lm/featureAxes';
import { headGroupValue, solveHeadGroup, type HeadStructure } from '../../core/matching/headMatching';
import type { LmEvaluationInput } from '../lm/evaluate';
import type { LmConfig } from '../lm/config';
import { lmBytesPerSequence } from '../lm/memoryPlan';
import { defaultMemoryBudget } from '../../core/memoryBudget';
import { formatBytes } from '../../../shared/bytes';
import { planBatchSize } from './batchPlan';
import { probeBytesPerExample } from './activationBytes';
import { planLmActivationMatching, type LmActivationMemoryPlan, type LmActivationPass, type LmActivationShapes } from '../../core/lmActivationMemory';

export interface Stats {
  readonly n: number;
  count: number;
  readonly sumA: Float64Array;
  readonly sumB: Float64Array;
  readonly sqA: Float64Array;
  readonly sqB: Float64Array;
  readonly cross: Float64Array;
}

export interface ActivationMatchingResult {
  readonly perms: Record<string, Int32Array>;
  /** Per permutation: mean correlation of matched units before (identity) and after. */
  readonly correlation: Record<string, { before: number; after: number }>;
  /** Permutations left as the identity because no activation exposed them. */
  readonly unobserved: string[];
}

function asSamples(t: tf.Tensor): tf.Tensor2D {
  return tf.reshape(t, [-1, t.shape[t.rank - 1]]);
}

export async function activationMatching(
  spec: PermSpec,
  a: Model,
  b: Model,
  batches: Batches,
  opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<ActivationMatchingResult> {
  const stats = new Map<string, Stats>();
  // Block-axis features (heads) by their key in `stats`, with the block axis they are laid out on.
  const blockParts = new Map<string, BlockPart>();
  for (let k = 0; k < batches.xs.length; k++) {
    throwIfCancelled(opts.signal, 'activation matching');
    accumulateBatch(spec, a, b, batches.xs[k], stats, blockParts);
    opts.onProgress?.({ stage: 'activations', fraction: (k + 1) / batches.xs.length, message: `Activation matching: batch ${k + 1} of ${batches.xs.length}` });
    await new Promise<void>((r) => setImmediate(r));
  }
  return assign(spec, stats, blockParts, opts);
}

/**
 * Runs A and B on one batch `x` and adds their features to the running sums. Every feature of the
 * batch is kept for both models until the batch is added: what a batch holds grows with its size
 * (measured by `activationMatchingBytes`).
 */
function accumulateBatch(spec: PermSpec, a: Model, b: Model, x: tf.Tensor, stats: Map<string, Stats>, blockParts: Map<string, BlockPart>): void {
  tf.tidy(() => {
    const featsA = new Map<string, tf.Tensor2D[]>();
    const featsB = new Map<string, tf.Tensor2D[]>();
    const collect = (into: Map<string, tf.Tensor2D[]>) => (weight: string, f: tf.Tensor, axis = 0) => {
      const perm = featureKey(spec, weight, axis, blockParts);
      if (perm === undefined) return;
      const list = into.get(perm) ?? [];
      // The forward pass's own tidy would free the features when it returns: keep them until used.
      list.push(tf.keep(asSamples(f)));
      into.set(perm, list);
    };
    a.forward(x, { onActivation: collect(featsA) });
    b.forward(x, { onActivation: collect(featsB) });
    for (const [perm, la] of featsA) {
      const lb = featsB.get(perm);
      if (!lb || lb.length !== la.length) continue;
      for (let i = 0; i < la.length; i++) {
        accumulate(stats, perm, la[i], lb[i]);
      }
    }
    for (const t of [...featsA.values(), ...featsB.values()].flat()) t.dispose();
  });
}

/**
 * Where a feature laid out like `weight`'s axis `axis` is summed: its permutation's name, or for
 * a block axis of one part (a transformer's heads) a key of its own, recorded in `blockParts`
 * (each such feature is one block structure of its group, solved by `assignBlocks`).
 */
function featureKey(spec: PermSpec, weight: string, axis: number, blockParts: Map<string, BlockPart>): string | undefined {
  const entry = spec.axes[weight]?.[axis];
  if (typeof entry === 'string') return entry;
  if (!isBlockAxis(entry) || entry.parts.length !== 1 || entry.parts[0].perms[0] === null) return undefined;
  const key = `\u0000block ${weight} ${axis}`;
  blockParts.set(key, entry.parts[0]);
  return key;
}

/**
 * Adds one batch of features [samples, units] of A and B to the running sums of permutation
 * `perm`. Its products are freed on return (own tidy): a batch adds many features in turn, and
 * only one feature's products are planned (core/lmActivationMemory.ts).
 */
export function accumulate(stats: Map<string, Stats>, perm: string, za: tf.Tensor2D, zb: tf.Tensor2D): void {
  const n = za.shape[1];
  let s = stats.get(perm);
  if (!s) {
    s = { n, count: 0, sumA: new Float64Array(n), sumB: new Float64Array(n), sqA: new Float64Array(n), sqB: new Float64Array(n), cross: new Float64Array(n * n) };
    stats.set(perm, s);
  }
  const [cross, sa, sb, qa, qb] = tf.tidy(() => [
    // A^T B through an explicit transpose (wasm's transposed matMul is slow).
    tf.matMul(tf.transpose(za), zb).dataSync(),
    tf.sum(za, 0).dataSync(),
    tf.sum(zb, 0).dataSync(),
    tf.sum(tf.square(za), 0).dataSync(),
    tf.sum(tf.square(zb), 0).dataSync(),
  ]);
  for (let j = 0; j < n; j++) {
    s.sumA[j] += sa[j];
    s.sumB[j] += sb[j];
    s.sqA[j] += qa[j];
    s.sqB[j] += qb[j];
  }
  for (let j = 0; j < n * n; j++) s.cross[j] += cross[j];
  s.count += za.shape[0];
}

/**
 * One assignment per permutation from its correlation matrix; block-axis features (heads) by
 * block assignment per group, its inner permutations with it; permutations without features
 * stay the identity.
 */
async function assign(spec: PermSpec, stats: ReadonlyMap<string, Stats>, blockParts: ReadonlyMap<string, BlockPart>, opts: SolveOptions): Promise<ActivationMatchingResult> {
  const perms: Record<string, Int32Array> = {};
  const correlation: Record<string, { before: number; after: number }> = {};
  const unobserved: string[] = [];
  const groups = new Map<string, [BlockPart, Stats | undefined][]>();
  for (const [key, part] of blockParts) {
    const outer = part.perms[0] as string;
    groups.set(outer, [...(groups.get(outer) ?? []), [part, stats.get(key)]]);
  }
  for (const features of groups.values()) {
    const h = assignBlocks(spec, features);
    if (!h) continue;
    for (const [name, p] of h.perms) {
      perms[name] = p;
      correlation[name] = h.correlation;
    }
  }
  for (const [name, size] of Object.entries(spec.perms)) {
    const s = stats.get(name);
    if (perms[name] && !s) continue;
    if (!s) {
      perms[name] = Int32Array.from({ length: size }, (_, i) => i);
      unobserved.push(name);
      continue;
    }
    const r = await assignOne(name, s, opts);
    perms[name] = r.perm;
    correlation[name] = r.correlation;
  }
  return { perms, correlation, unobserved };
}

interface SolveOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
}

/**
 * One permutation's assignment (maximise the summed correlation) and its mean correlation before
 * and after. A wide one can take minutes: it reports its rows and stops on cancel inside the solve.
 */
async function assignOne(name: string, s: Stats, opts: SolveOptions): Promise<{ perm: Int32Array; correlation: { before: number; after: number } }> {
  const corr = correlationMatrix(s);
  const r = await solveAssignmentMaxAsync(corr, s.n, {
    signal: opts.signal,
    onProgress: opts.onProgress && ((p) => {
      const left = p.secondsLeft === undefined ? '' : `, ${formatTimeLeft(p.secondsLeft)} for it`;
      const what = p.phase === 'reduction' ? 'first passes' : `${p.rowsDone.toLocaleString('en-US')} of ${p.n.toLocaleString('en-US')} rows`;
      opts.onProgress?.({ stage: 'activations', message: `Activation matching: assignment of ${name} (${p.n} units), ${what}${left}` });
    }),
  }).catch((e: unknown) => {
    if (e instanceof AssignmentError && e.kind === 'Cancelled') throwIfCancelled(opts.signal, 'activation matching');
    throw e;
  });
  let before = 0;
  for (let i = 0; i < s.n; i++) before += corr[i * s.n + i];
  return { perm: r.rowToCol, correlation: { before: before / s.n, after: r.value / s.n } };
}

/** Bytes a permutation's running sums hold (core/lmActivationMemory.ts `statisticsBytes` plans them). */
function statsBytes(s: Stats): number {
  return s.sumA.byteLength + s.sumB.byteLength + s.sqA.byteLength + s.sqB.byteLength + s.cross.byteLength;
}

/** Pearson correlation of A's unit i with B's unit j; dead units (zero variance) correlate 0. */
export function correlationMatrix(s: Stats): Float64Array {
  const { n, count } = s;
  const mA = Float64Array.from(s.sumA, (v) => v / count);
  const mB = Float64Array.from(s.sumB, (v) => v / count);
  const sdA = Float64Array.from(s.sqA, (v, i) => Math.sqrt(Math.max(0, v / count - mA[i] * mA[i])));
  const sdB = Float64Array.from(s.sqB, (v, i) => Math.sqrt(Math.max(0, v / count - mB[i] * mB[i])));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const cov = s.cross[i * n + j] / count - mA[i] * mB[j];
      const den = sdA[i] * sdB[j];
      out[i * n + j] = den > 1e-12 ? cov / den : 0;
    }
  }
  return out;
}

/** Examples per batch at most: what a data set of any size is streamed in. */
export const MAX_ACTIVATION_BATCH = 500;

/** How a classifier's activation matching streamed its data, from the memory budget. */
export interface ActivationBatchPlan {
  /** Examples per batch: the largest (at most 500) whose features fit beside what is held. */
  readonly batchSize: number;
  readonly batches: number;
  /** Bytes a batch holds per example: both models' forward passes and their kept features (measured). */
  readonly perExampleBytes: number;
  /** Bytes of the running sums (n x n cross sums per permutation), whatever the batch size. */
  readonly statisticsBytes: number;
  /** Bytes held whatever the batch size: `heldBytes`, the models, the data as uploaded, the sums. */
  readonly residentBytes: number;
  readonly budget: number;
}

export interface ClassifierActivationMatchingResult extends ActivationMatchingResult {
  readonly plan: ActivationBatchPlan;
}

/**
 * Bytes one batch of activation matching holds per example and the part that does not grow with
 * the batch, measured with tf.profile on probe batches of 1 and 3 zero examples through the same
 * code path (both forward passes, every feature kept, the sums' products); and the running sums'
 * bytes (JS float64 arrays, not tfjs tensors) with the widest permutation's.
 */
export async function activationMatchingBytes(spec: PermSpec, a: Model, b: Model): Promise<{ perExample: number; fixed: number; statisticsBytes: number; widest?: { perm: string; bytes: number } }> {
  let sums = new Map<string, Stats>();
  const { perExample, fixed } = await probeBytesPerExample(a.inputShape, (x) => {
    // The last probe's sums are the running sums' sizes.
    sums = new Map();
    accumulateBatch(spec, a, b, x, sums, new Map());
  });
  let statisticsBytes = 0;
  let widest: { perm: string; bytes: number } | undefined;
  for (const [key, st] of sums) {
    const bytes = statsBytes(st);
    statisticsBytes += bytes;
    if (!widest || bytes > widest.bytes) widest = { perm: key.startsWith('\u0000block ') ? `the heads of ${key.split(' ')[1]}` : key, bytes };
  }
  return { perExample, fixed, statisticsBytes, ...(widest ? { widest } : {}) };
}

export interface ActivationMatchingOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Examples per batch at most (500); fewer when the memory budget needs it. */
  readonly batchSize?: number;
  /** Bytes the models, the data, the sums and a batch's features may use (default half of physical memory). */
  readonly memoryBudget?: number;
  /** Bytes of the budget already held (the process, the checkpoints and data as read): the plan fits beside them. */
  readonly heldBytes?: number;
}

/**
 * Activation matching from tensors: builds both models (config as for the barrier) and streams
 * `data` in the largest batches (at most 500) whose features fit in the memory budget beside what
 * is held (`planBatchSize`, the plan of loss-curve evaluation); refuses with OverBudget when not
 * even one example fits. The batch size does not change the sums, only their order of summation.
 */
export async function activationMatchingFromTensors(
  spec: PermSpec,
  a: TensorMap,
  b: TensorMap,
  config: ModelConfig,
  data: Dataset,
  opts: ActivationMatchingOptions = {},
): Promise<ClassifierActivationMatchingResult> {
  const uploadedBefore = tf.memory().numBytes;
  const ma = buildModel(a, config);
  const mb = buildModel(b, config);
  let batches: Batches | undefined;
  try {
    assertFeaturesFit(data.xShape.slice(1), ma.inputShape, data.source);
    // A first tiny pass uploads whatever the models upload on first use: the probes then see only the batch.
    tf.tidy(() => {
      const x = tf.zeros([1, ...ma.inputShape]);
      ma.forward(x);
      mb.forward(x);
    });
    const models = Math.max(0, tf.memory().numBytes - uploadedBefore);
    const probe = await activationMatchingBytes(spec, ma, mb);
    const budget = opts.memoryBudget ?? defaultMemoryBudget();
    const uploadedData = data.x.byteLength + data.y.byteLength;
    const residentBytes = (opts.heldBytes ?? 0) + models + uploadedData + probe.fixed + probe.statisticsBytes;
    const sums = probe.widest ? ` (running sums: ${formatBytes(probe.statisticsBytes)}, the widest ${probe.widest.perm}'s ${formatBytes(probe.widest.bytes)})` : '';
    const batchSize = planBatchSize({
      budget,
      backend: tf.getBackend() === 'wasm' ? 'wasm' : 'cpu',
      resident: residentBytes,
      perExample: probe.perExample,
      maxBatch: Math.max(1, Math.min(opts.batchSize ?? MAX_ACTIVATION_BATCH, data.n)),
      what: 'activation matching',
      residentWhat: `${opts.heldBytes ? 'the process, ' : ''}the models, the data and the statistics${sums}`,
    });
    batches = toBatches(data, batchSize);
    const r = await activationMatching(spec, ma, mb, batches, opts);
    return { ...r, plan: { batchSize, batches: batches.xs.length, perExampleBytes: probe.perExample, statisticsBytes: probe.statisticsBytes, residentBytes, budget } };
  } finally {
    ma.dispose();
    mb.dispose();
    batches?.dispose();
  }
}

export type { LmFeatureAxes } from '../lm/featureAxes';

/** Keys of a block's attention features in the running sums (never a permutation's name). */
const HEAD_KINDS = ['out', 'q', 'k', 'v'] as const;
const headKey = (layer: number, kind: (typeof HEAD_KINDS)[number]): string => `\u0000heads ${layer} ${kind}`;
/** Key of a block's experts' hidden units (mixture of experts) in the running sums. */
const expertKey = (layer: number): string => `\u0000experts ${layer}`;

/**
 * Activation matching for a transformer language model on token data (Git Re-Basin section 3.1
 * applied to a transformer's units), from the correlations of A's and B's features over every
 * token:
 * - the residual stream: one permutation from every layer's residual features (the embeddings'
 *   output and each sub-block's output are samples of the same units);
 * - each MLP's hidden units (its down projection's input);
 * - each block's heads, after Verma & Elbayad 2024 (arXiv 2403.00986): the correlation matrix of
 *   the heads' outputs (before the output projection) and of the q, k, v projections is cut into
 *   per-head-pair blocks; for each pair (A's head, B's head) the inner permutations (v/o and,
 *   where the spec has them, q/k dimensions; with GQA the query heads inside a KV group) are
 *   solved by assignment, then one outer assignment over the heads (or KV groups) on the
 *   pairs' values (core/matching/headMatching.ts, as weight matching with heads does).
 * Permutations no feature exposes stay the identity and are listed in `unobserved`.
 * Memory (core/lmActivationMemory.ts): the sums are planned from the shapes before the models
 * run; over `memoryBudget` the blocks are split into passes over the data, each keeping only its
 * blocks' features and sums and solving them before the next (same batches, same permutations);
 * when even one block does not fit, MemoryBudgetError names its permutation and the bytes.
 */
export async function lmActivationMatching(
  spec: PermSpec,
  a: LmModel,
  b: LmModel,
  input: LmEvaluationInput,
  which: LmFeatureAxes,
  opts: LmActivationOptions = {},
): Promise<LmActivationMatchingResult> {
  const { n, t } = input;
  const budget = opts.memoryBudget ?? defaultMemoryBudget();
  const plan = planLmActivationMatching(lmActivationShapes(which, a.config, input), budget, opts.sequencesPerBatch ?? 16, opts.heldBytes ?? 0);
  const step = plan.sequencesPerBatch;
  const perms: Record<string, Int32Array> = {};
  const correlation: Record<string, { before: number; after: number }> = {};
  const total = plan.passes.length;
  for (const [k, pass] of plan.passes.entries()) {
    const stats = new Map<string, Stats>();
    const blocks = new Set(pass.blocks);
    const what = total > 1 ? `pass ${k + 1} of ${total}, ${passLabel(pass)}, ` : '';
    let featureBytes = 0;
    for (let s0 = 0; s0 < n; s0 += step) {
      throwIfCancelled(opts.signal, 'activation matching');
      const s1 = Math.min(n, s0 + step);
      tf.tidy(() => {
        const ids = tf.tensor2d(input.input.subarray(s0 * t, s1 * t), [s1 - s0, t], 'int32');
        // Only this pass's features are kept: the others' sums belong to another pass.
        const grab = (into: Map<string, tf.Tensor2D[]>): LmFeatureHooks => ({
          residual: (_layer, x) => {
            if (pass.residual) push(into, which.residual, x);
          },
          mlp: (layer, h) => {
            if (blocks.has(layer)) push(into, which.mlp[layer], h);
          },
          attention: (layer, f) => {
            const axes = which.heads?.[layer];
            if (!axes || !blocks.has(layer)) return;
            for (const kind of HEAD_KINDS) if (axes[kind]) push(into, headKey(layer, kind), f[kind]);
          },
          experts: (layer, h) => {
            if (which.experts?.[layer] && blocks.has(layer)) push(into, expertKey(layer), h);
          },
        });
        const fa = new Map<string, tf.Tensor2D[]>();
        const fb = new Map<string, tf.Tensor2D[]>();
        a.hidden(ids, grab(fa)).dispose();
        b.hidden(ids, grab(fb)).dispose();
        const kept = [...fa.values(), ...fb.values()].flat();
        featureBytes = Math.max(featureBytes, kept.reduce((acc, x) => acc + 4 * x.size, 0));
        for (const [key, la] of fa) {
          const lb = fb.get(key) ?? [];
          la.forEach((za, i) => lb[i] && accumulate(stats, key, za, lb[i]));
        }
        for (const x of kept) x.dispose();
      });
      opts.onProgress?.({ stage: 'activations', fraction: (k * n + s1) / (total * n), message: `Activation matching: ${what}${s1} of ${n} sequences` });
      await new Promise<void>((r) => setImmediate(r));
    }
    opts.onPass?.({ pass: k, statisticsBytes: [...stats.values()].reduce((acc, x) => acc + statsBytes(x), 0), featureBytes });
    // Solved now, so that the next pass starts with no sums held.
    for (const name of Object.keys(spec.perms)) {
      const x = stats.get(name);
      if (!x) continue;
      const r = await assignOne(name, x, opts);
      perms[name] = r.perm;
      correlation[name] = r.correlation;
    }
    for (const layer of pass.blocks) {
      const axes = which.heads?.[layer];
      const experts = which.experts?.[layer];
      // Heads, and the experts (blocks: experts, inside each: its units) by the same block assignment.
      for (const h of [axes && assignHeads(spec, stats, layer, axes), experts && assignBlocks(spec, [[experts, stats.get(expertKey(layer))]])]) {
        if (!h) continue;
        for (const [name, p] of h.perms) {
          perms[name] = p;
          correlation[name] = h.correlation;
        }
      }
    }
  }
  const unobserved: string[] = [];
  for (const [name, size] of Object.entries(spec.perms)) {
    if (perms[name]) continue;
    perms[name] = Int32Array.from({ length: size }, (_, i) => i);
    unobserved.push(name);
  }
  return { perms, correlation, unobserved, plan };
}

export interface LmActivationOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Sequences per forward pass at most (16); fewer when the memory budget needs it. */
  readonly sequencesPerBatch?: number;
  /** Bytes the sums, the kept features and the forward passes may use (default half of physical memory). */
  readonly memoryBudget?: number;
  /** Bytes of the budget already held (the process, the models): the plan fits beside them. */
  readonly heldBytes?: number;
  /** After each pass over the data, what its accumulators actually held (the plan's check). */
  readonly onPass?: (report: { readonly pass: number; readonly statisticsBytes: number; readonly featureBytes: number }) => void;
}

export interface LmActivationMatchingResult extends ActivationMatchingResult {
  readonly plan: LmActivationMemoryPlan;
}

/** "residual stream and blocks 0–3", "blocks 4–7", "block 8" (blocks numbered as in the tensor names). */
function passLabel(pass: LmActivationPass): string {
  const bs = pass.blocks;
  const blocks = bs.length === 0 ? '' : bs.length === 1 ? `block ${bs[0]}` : `blocks ${bs[0]}\u2013${bs[bs.length - 1]}`;
  if (!pass.residual) return blocks;
  return blocks ? `residual stream and ${blocks}` : 'residual stream';
}

/**
 * The shapes activation matching's memory plan reads, from config.json and the feature axes:
 * the residual stream is sampled 2L + 1 times per forward pass (the embeddings' output, each
 * attention's and each block's), each block's MLP and attention features once.
 */
export function lmActivationShapes(which: LmFeatureAxes, config: LmConfig, input: Pick<LmEvaluationInput, 'n' | 't'>): LmActivationShapes {
  const widths = { out: config.heads * config.headDim, q: config.heads * config.headDim, k: config.kvHeads * config.headDim, v: config.kvHeads * config.headDim };
  return {
    tokensPerSequence: input.t,
    sequences: input.n,
    forwardBytesPerSequence: lmBytesPerSequence(config, input.t),
    residual: which.residual ? { perm: which.residual, units: config.hidden, samples: 2 * config.layers + 1 } : undefined,
    blocks: Array.from({ length: config.layers }, (_, layer) => {
      const mlp = which.mlp[layer];
      const axes = which.heads?.[layer];
      const heads = HEAD_KINDS.flatMap((kind) => {
        const part = axes?.[kind];
        if (!part) return [];
        const names = part.perms.filter((p): p is string => p !== null);
        return [{ perm: names[0] ?? `block ${layer} heads`, units: widths[kind], perms: names }];
      });
      // A block's experts are one more block-structured feature (experts x units wide).
      const experts = which.experts?.[layer];
      const expertUnits = experts ? [{ perm: experts.perms[0] ?? `block ${layer} experts`, units: experts.split[0] * experts.split[1], perms: experts.perms.filter((p): p is string => p !== null) }] : [];
      return { mlp: mlp ? { perm: mlp, units: config.intermediate ?? 4 * config.hidden } : undefined, heads: [...heads, ...expertUnits] };
    }),
  };
}

/**
 * One block's heads from its attention features' correlations: one HeadStructure per feature
 * (its block axis and its A-by-B correlation matrix), solved inner then outer. Inner
 * permutations no feature exposes (q/k dimensions when q and k are not block axes) are left out
 * and stay the identity.
 */
function assignHeads(spec: PermSpec, stats: ReadonlyMap<string, Stats>, layer: number, axes: LmHeadAxes): { perms: Map<string, Int32Array>; correlation: { before: number; after: number } } | undefined {
  return assignBlocks(spec, HEAD_KINDS.map((kind) => [axes[kind], stats.get(headKey(layer, kind))]));
}

/** One block group (heads, or a mixture's experts) from its features: block axis and sums each. */
function assignBlocks(spec: PermSpec, features: readonly (readonly [BlockPart | undefined, Stats | undefined])[]): { perms: Map<string, Int32Array>; correlation: { before: number; after: number } } | undefined {
  const structs: HeadStructure[] = [];
  let outer: string | undefined;
  let units = 0;
  for (const [part, s] of features) {
    if (!part || !s || part.perms[0] === null) continue;
    if (outer !== undefined && part.perms[0] !== outer) continue;
    outer = part.perms[0];
    structs.push({ split: part.split, perms: part.perms, s: Float32Array.from(correlationMatrix(s)) });
    units += s.n;
  }
  if (outer === undefined) return undefined;
  const blocks = spec.perms[outer];
  const members = new Map<string, number>();
  for (const st of structs) {
    for (const name of st.perms.slice(1)) {
      if (name !== null) members.set(name, spec.perms[name] / (spec.blocks?.[name] ?? blocks));
    }
  }
  const solution = solveHeadGroup(structs, blocks, members);
  const identity = (size: number) => Int32Array.from({ length: size }, (_, i) => i);
  const before = headGroupValue(structs, identity(blocks), new Map([...members.keys()].map((name) => [name, identity(spec.perms[name])])), members);
  const perms = new Map<string, Int32Array>([[outer, solution.outer], ...solution.inner]);
  return { perms, correlation: { before: before / units, after: solution.value / units } };
}

function push(into: Map<string, tf.Tensor2D[]>, perm: string | undefined, x: tf.Tensor2D): void {
  if (!perm) return;
  const list = into.get(perm) ?? [];
  // The forward pass's own tidy would free the features when it returns: keep them until used.
  list.push(tf.keep(tf.clone(x)));
  into.set(perm, list);
}
