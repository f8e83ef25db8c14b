/**
 * Weight-space merging: linear interpolation of two models, and MergeMany (Ainsworth et al.,
 * Git Re-Basin, Algorithm 3), which aligns each of several models to the mean of the others
 * until no permutation changes, then averages. All math stays in Float32Array.
 */
import type { DenseTensor, MatMulABt, PermSpec, Permutations, Progress, TensorMap } from '../checkpoint';
import { cancelled, MatchingError } from './errors';
import { applyPermutations, composePermutations, identityPermutations, invertPermutation } from './permute';
import { mulberry32, shuffleInPlace } from './prng';
import { matchingFraction, weightMatching } from './weightMatching';

function sameShape(x: DenseTensor, y: DenseTensor): boolean {
  return x.shape.length === y.shape.length && x.shape.every((s, d) => s === y.shape[d]) && x.data.length === y.data.length;
}

/**
 * (1 - lambda) * A + lambda * B for every tensor of A (B must hold it with the same shape).
 * Callers decide which tensors to pass (e.g. only floating-point ones).
 */
export function interpolate(a: TensorMap, b: TensorMap, lambda: number): Map<string, DenseTensor> {
  if (!Number.isFinite(lambda)) throw new MatchingError('BadArgument', `interpolate: lambda ${lambda} is not finite`);
  const out = new Map<string, DenseTensor>();
  const wa = 1 - lambda;
  for (const [name, ta] of a) {
    const tb = b.get(name);
    if (!tb) throw new MatchingError('MissingTensor', `interpolate: tensor \`${name}\` is missing from model B`, name);
    if (!sameShape(ta, tb)) {
      throw new MatchingError('ShapeMismatch', `interpolate: tensor \`${name}\` has shape [${ta.shape}] in A and [${tb.shape}] in B`, name);
    }
    const x = ta.data;
    const y = tb.data;
    const z = new Float32Array(x.length);
    for (let i = 0; i < z.length; i++) z[i] = wa * x[i] + lambda * y[i];
    out.set(name, { shape: ta.shape, data: z });
  }
  return out;
}

export interface MergeManyOptions {
  readonly seed: number;
  /** Cap on MergeMany rounds; also each inner weight matching's sweep cap. */
  readonly maxIter: number;
  readonly matmul: MatMulABt;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Memory budget of the whole job in bytes (see WeightMatchingOptions); the models held count against it. */
  readonly memoryBudget?: number;
}

export interface MergeManyResult {
  /**
   * perms[k] aligns models[k] (gather convention) to the merged model, which is expressed in
   * models[0]'s unit order: perms[0] is the identity.
   */
  readonly perms: Record<string, Int32Array>[];
  /** Mean of the aligned models; every tensor of models[0] (tensors outside the spec averaged as they are). */
  readonly merged: Map<string, DenseTensor>;
  /** Rounds run; each realigns every model once. */
  readonly iterations: number;
}

/** Mean over models of the tensors in `names`, skipping model `skip` (-1: none). */
function meanOf(models: readonly TensorMap[], names: readonly string[], skip: number): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  const count = models.length - (skip >= 0 ? 1 : 0);
  for (const name of names) {
    const first = models[0].get(name)!;
    const acc = new Float32Array(first.data.length);
    models.forEach((m, k) => {
      if (k === skip) return;
      const x = m.get(name)!.data;
      for (let i = 0; i < acc.length; i++) acc[i] += x[i];
    });
    const inv = 1 / count;
    for (let i = 0; i < acc.length; i++) acc[i] *= inv;
    out.set(name, { shape: first.shape, data: acc });
  }
  return out;
}

function samePerms(x: Permutations, y: Permutations): boolean {
  return Object.keys(x).every((p) => x[p].length === y[p].length && x[p].every((v, i) => v === y[p][i]));
}

/**
 * MergeMany (paper Algorithm 3): start from identity permutations; in each round, visit the
 * models in a seeded random order and re-align model k to the mean of the others (already
 * aligned) by weight matching, warm-started from its current permutations; stop after a round
 * where no permutation changed, or after `maxIter` rounds. Returns each model's permutations
 * and the mean of the aligned models, both re-expressed in models[0]'s unit order (so models[0]
 * acts as the reference and its permutations are the identity).
 *
 * Memory held: one aligned copy of every model's spec tensors (N x the permuted part of a model),
 * plus the mean of the others (1 x) and weight matching's own caches while it runs; the input
 * models are not copied or modified.
 */
export async function mergeMany(spec: PermSpec, models: readonly TensorMap[], opts: MergeManyOptions): Promise<MergeManyResult> {
  if (models.length < 2) throw new MatchingError('BadArgument', `merge many: needs at least 2 models, got ${models.length}`);
  const specNames = Object.keys(spec.axes);
  for (const name of models[0].keys()) {
    const t0 = models[0].get(name)!;
    models.forEach((m, k) => {
      const t = m.get(name);
      if (!t) throw new MatchingError('MissingTensor', `merge many: tensor \`${name}\` is missing from model ${k}`, name);
      if (!sameShape(t0, t)) throw new MatchingError('ShapeMismatch', `merge many: tensor \`${name}\` has shape [${t.shape}] in model ${k}, [${t0.shape}] in model 0`, name);
    });
  }
  for (const name of specNames) {
    if (!models[0].has(name)) throw new MatchingError('MissingTensor', `merge many: tensor \`${name}\` is missing from model 0`, name);
  }
  const specOnly = (m: TensorMap): Map<string, DenseTensor> => new Map(specNames.map((n) => [n, m.get(n)!]));
  const perms = models.map(() => identityPermutations(spec));
  const aligned: TensorMap[] = models.map(specOnly);
  const random = mulberry32(opts.seed);
  let heldBytes = 0;
  for (const m of [...models, ...aligned]) for (const t of m.values()) heldBytes += t.data.byteLength;
  let iterations = 0;
  for (let round = 0; round < opts.maxIter; round++) {
    let changed = false;
    const order = shuffleInPlace(models.map((_, k) => k), random);
    for (const [position, k] of order.entries()) {
      if (opts.signal?.aborted) throw cancelled();
      const target = meanOf(aligned, specNames, k);
      // How far the whole merge is: rounds taken to cost less and less, like weight matching's sweeps.
      const fraction = (within: number): number => matchingFraction(round, (position + within) / models.length, opts.maxIter);
      const step = `MergeMany: round ${round + 1}, model ${k + 1} of ${models.length}`;
      const res = await weightMatching(spec, target, specOnly(models[k]), {
        onProgress: opts.onProgress && ((p) => opts.onProgress?.({ stage: 'merge-many', iteration: round + 1, fraction: fraction(Math.min(1, p.fraction ?? 0)), message: `${step}: ${p.message ?? 'weight matching'}` })),
        seed: Math.floor(random() * 0x7fffffff), maxIter: opts.maxIter, matmul: opts.matmul,
        signal: opts.signal, initPerms: perms[k],
        // The inputs and their aligned copies are held besides the two operands weight matching counts.
        ...(opts.memoryBudget !== undefined ? { memoryBudget: opts.memoryBudget - heldBytes } : {}),
      });
      if (!samePerms(res.perms, perms[k])) {
        changed = true;
        perms[k] = res.perms;
        aligned[k] = applyPermutations(spec, res.perms, specOnly(models[k]));
      }
      opts.onProgress?.({
        stage: 'merge-many', iteration: round + 1, objective: res.objectiveAfter, fraction: fraction(1),
        message: `${step} aligned to the mean of the others`,
      });
    }
    iterations = round + 1;
    if (!changed) break;
  }
  // Express the result in model 0's unit order: gathering with inv(perms[0]) undoes model 0's
  // permutation, so perms[0] becomes the identity and every other perms[k] is composed with it.
  const toReference: Record<string, Int32Array> = {};
  for (const p of Object.keys(spec.perms)) toReference[p] = invertPermutation(perms[0][p]);
  const finalPerms = perms.map((pk) => {
    const out: Record<string, Int32Array> = {};
    for (const p of Object.keys(spec.perms)) out[p] = composePermutations(pk[p], toReference[p]);
    return out;
  });
  const merged = applyPermutations(spec, toReference, meanOf(aligned, specNames, -1));
  const others = [...models[0].keys()].filter((n) => !spec.axes[n]);
  for (const [name, t] of meanOf(models, others, -1)) merged.set(name, t);
  return { perms: finalPerms, merged, iterations };
}
