/**
 * `align` request: find the permutations that align checkpoint B to A (Git Re-Basin section 3:
 * weight matching, Algorithm 1; activation matching, section 3.1; the straight-through
 * estimator, Algorithm 2), optionally return per-group similarity matrices, check that π(B)
 * computes the same function as B when a forward pass exists for the family, and write π(B)
 * with B's dtypes and non-spec tensors unchanged.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Checkpoint, DenseTensor, PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import { loadDataset, type Dataset } from '../../core/data';
import { applyPermutations, axisPermsOf, dotProduct, identityPermutations, permuteTensor } from '../../core/matching/permute';
import { isRunningStatistic, similarityMatrixWith, weightMatching, type GroupReport, type WeightMatchingResult } from '../../core/matching/weightMatching';
import { detectTransformer } from '../../core/spec/inferTransformer';
import { defaultMemoryBudget, MemoryBudgetError, planWeightMatching } from '../../core/memoryPlan';
import { provenanceMetadata, writeSafetensors, type TensorSource } from '../../core/safetensors';
import { currentBackend } from '../backend';
import { activationMatchingFromTensors } from '../compute/activationMatching';
import { checkPermutedEquivalence } from '../compute/equivalence';
import { checkTransformerEquivalence } from '../compute/transformerEquivalence';
import { lmActivationMatching } from '../compute/activationMatching';
import { isLmCheckpoint, locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig } from '../lm/config';
import { buildLm } from '../lm/model';
import { tokenInput } from './evaluateLmPath';
import { readModelConfig } from '../compute/modelConfig';
import { ModelError } from '../compute/modelErrors';
import { steMatching } from '../compute/ste';
import type { HandlerContext } from '../dispatch';
import { EngineError, throwIfCancelled } from '../errors';
import { axisPermutations, base, closeAll, isFloatDtype, loadTensors, openAll, permuteRawBytes, specFor } from '../loadTensors';
import type { AlignRequest, AlignResult, DataOptions, EquivalenceReport, GroupMatrices } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { TOOL, VERSION } from '../version';

/** STE settings when the request gives none (the CLI's defaults). */
const STE_DEFAULTS = { epochs: 1, batchSize: 500, learningRate: 1e-3 };
/** Examples fed to both models by the equivalence check. */
const EQUIVALENCE_EXAMPLES = 64;

/** Refuses an output path that is (textually) one of the inputs, before any work is done. */
export function assertOutNotInput(out: string, inputs: readonly string[]): void {
  const o = path.resolve(out);
  for (const i of inputs) {
    if (path.resolve(i) === o) throw new EngineError('InvalidRequest', `${base(out)}: refusing to write over an input: choose another output path`, out);
  }
}

/** The request's memory budget in bytes, else half of physical memory. */
export function memoryBudgetOf(req: { readonly memoryBudget?: number }): number {
  return req.memoryBudget ?? defaultMemoryBudget(os.totalmem());
}

/**
 * Refuses, before any tensor is read, a weight matching whose memory plan does not fit the
 * budget: one line naming B, the permutation and the bytes needed.
 */
export function checkMatchingMemory(spec: PermSpec, a: Checkpoint, b: Checkpoint, budget: number): void {
  const shapes = new Map<string, readonly number[]>();
  let heldBytes = 0;
  for (const name of Object.keys(spec.axes)) {
    const info = a.get(name);
    if (!info) continue;
    shapes.set(name, info.shape);
    heldBytes += 2 * 4 * info.shape.reduce((p, s) => p * s, 1);
  }
  try {
    planWeightMatching(spec, shapes, { budget, heldBytes, counted: (t) => !isRunningStatistic(t) });
  } catch (e) {
    if (e instanceof MemoryBudgetError) throw new EngineError('OverBudget', `${base(b.path)}: ${e.message}`, b.path);
    throw e;
  }
}

/** Weight matching with the tfjs cost-matrix products (ctx progress and cancellation wired). */
export function matchWeights(spec: PermSpec, a: TensorMap, b: TensorMap, seed: number, maxIter: number, ctx: HandlerContext, memoryBudget?: number): Promise<WeightMatchingResult> {
  return weightMatching(spec, a, b, { seed, maxIter, matmul: tfMatMul, signal: ctx.signal, onProgress: ctx.onProgress, memoryBudget });
}

/**
 * Weight matching's objective for given permutations, total and per group (sum over the
 * (tensor, axis) pairs a group acts on of <A_t, π(B)_t>), as weightMatching reports it: used to
 * report data-driven methods on the same scale.
 */
export function groupObjectives(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Permutations): { total: number; groups: Map<string, number> } {
  const groups = new Map<string, number>(Object.keys(spec.perms).map((p) => [p, 0]));
  let total = 0;
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    if (isRunningStatistic(tensor)) continue;
    const d = dotProduct(a.get(tensor)!.data, permuteTensor(b.get(tensor)!, axisPermsOf(spec, perms, tensor)).data);
    total += d;
    for (const p of axes) if (p !== null) groups.set(p, groups.get(p)! + d);
  }
  return { total, groups };
}

/** Euclidean distance over the spec's tensors between A and B, and between A and π(B) (float64 sums). */
export function specDistances(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Permutations): { naive: number; aligned: number } {
  let naive = 0;
  let aligned = 0;
  for (const tensor of Object.keys(spec.axes)) {
    const x = a.get(tensor)!.data;
    const y = b.get(tensor)!.data;
    const z = permuteTensor(b.get(tensor)!, axisPermsOf(spec, perms, tensor)).data;
    for (let i = 0; i < x.length; i++) {
      naive += (x[i] - y[i]) ** 2;
      aligned += (x[i] - z[i]) ** 2;
    }
  }
  return { naive: Math.sqrt(naive), aligned: Math.sqrt(aligned) };
}

function reportFor(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Permutations, iterations: number): WeightMatchingResult {
  const before = groupObjectives(spec, a, b, identityPermutations(spec));
  const after = groupObjectives(spec, a, b, perms);
  const groups: GroupReport[] = Object.keys(spec.perms).sort().map((name) => ({
    name,
    size: spec.perms[name],
    moved: perms[name].reduce((m, v, i) => m + (v !== i ? 1 : 0), 0),
    objectiveBefore: before.groups.get(name)!,
    objectiveAfter: after.groups.get(name)!,
  }));
  return { perms: { ...perms }, iterations, objectiveBefore: before.total, objectiveAfter: after.total, groups };
}

/** Writes π(B): every tensor of B, spec tensors gathered on their raw bytes (dtype kept exactly). */
export async function writePermuted(
  out: string, b: Checkpoint, spec: PermSpec, perms: Permutations, metadata: Record<string, string>, inputs: readonly string[], signal: AbortSignal,
): Promise<void> {
  const sources: TensorSource[] = b.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    byteLength: t.byteLength,
    read: async () => permuteRawBytes(await b.readRaw(t.name), t.dtype, t.shape, axisPermutations(spec, perms, t.name, t.shape.length), b.path, t.name),
  }));
  await writeSafetensors(out, sources, { metadata, inputs, signal });
}

function permsAsArrays(perms: Permutations): Record<string, number[]> {
  return Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, Array.from(v)]));
}

function floatNames(ck: Checkpoint): string[] {
  return ck.tensors.filter((t) => isFloatDtype(t.dtype)).map((t) => t.name);
}

/** Training examples for the data-driven methods (activation matching and STE learn on train). */
function trainingData(req: AlignRequest): Promise<Dataset> {
  const data: DataOptions | undefined = req.data;
  if (!data) throw new EngineError('InvalidRequest', `${req.method} matching needs data (--data): it runs both models on examples`);
  return loadDataset(data, data.split === 'test' ? 'test' : 'train');
}

/**
 * Activation matching of Hugging Face language models on token data (`req.data`, read like a
 * barrier's): the residual stream and the MLP hidden units (GPT-2; heads are not matched).
 */
async function lmActivationPerms(req: AlignRequest, spec: PermSpec, ta: TensorMap, tb: TensorMap, ctx: HandlerContext): Promise<Record<string, Int32Array>> {
  if (!req.data) throw new EngineError('InvalidRequest', 'activation matching needs token data (--data): it runs both language models on it');
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  if (config.family !== 'gpt2') throw new EngineError('InvalidRequest', `${paths.config}: activation matching of language models is implemented for GPT-2, not yet for ${config.modelType}`);
  const { input } = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer);
  // The residual stream's permutation is the one on the final norm; each block's MLP one on its c_fc bias.
  const prefix = [...ta.keys()].find((k) => k.endsWith('ln_f.weight'))?.slice(0, -'ln_f.weight'.length) ?? '';
  const which = {
    residual: spec.axes[`${prefix}ln_f.weight`]?.[0] ?? undefined,
    mlp: Array.from({ length: config.layers }, (_, i) => spec.axes[`${prefix}h.${i}.mlp.c_fc.bias`]?.[0] ?? undefined),
  };
  const a = buildLm(ta, config, paths.weights);
  try {
    const b = buildLm(tb, config, req.b);
    try {
      const r = await lmActivationMatching(spec, a, b, input, which, { signal: ctx.signal, onProgress: ctx.onProgress });
      if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
      return r.perms;
    } finally {
      b.dispose();
    }
  } finally {
    a.dispose();
  }
}

/** Runs the requested method and reports it like weight matching. */
async function findPermutations(req: AlignRequest, a: Checkpoint, b: Checkpoint, spec: PermSpec, ctx: HandlerContext): Promise<{ result: WeightMatchingResult; ta: TensorMap; tb: TensorMap }> {
  const zeroed = new Set<string>();
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal, zeroNonFinite: zeroed };
  // Data-driven methods run forward passes, which need every float tensor, not only the spec's.
  const names = req.method === 'weight' ? Object.keys(spec.axes) : [...new Set([...Object.keys(spec.axes), ...floatNames(a)])];
  if (req.method === 'weight') checkMatchingMemory(spec, a, b, memoryBudgetOf(req));
  const ta = await loadTensors(a, names, opts);
  const tb = await loadTensors(b, names, opts);
  if (zeroed.size) ctx.log(`align: NaN/Inf weights of ${zeroed.size} tensor(s) count as 0 for matching (first: \`${[...zeroed][0]}\`); they are written unchanged`);
  throwIfCancelled(ctx.signal, 'align');
  switch (req.method) {
    case 'weight':
      return { result: await matchWeights(spec, ta, tb, req.seed, req.maxIter, ctx, memoryBudgetOf(req)), ta, tb };
    case 'activation': {
      if (isLmCheckpoint(req.a)) return { result: reportFor(spec, ta, tb, await lmActivationPerms(req, spec, ta, tb, ctx), 1), ta, tb };
      const data = await trainingData(req);
      const config = readModelConfig(req.a, req.model);
      const r = await activationMatchingFromTensors(spec, ta, tb, config, data, { signal: ctx.signal, onProgress: ctx.onProgress });
      if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
      return { result: reportFor(spec, ta, tb, r.perms, 1), ta, tb };
    }
    case 'ste': {
      if (isLmCheckpoint(req.a)) throw new EngineError('InvalidRequest', `${req.a}: the straight-through estimator is not implemented for language models: use --method weight or activation`);
      const data = await trainingData(req);
      const config = readModelConfig(req.a, req.model);
      const ste = req.ste ?? STE_DEFAULTS;
      const r = await steMatching(spec, ta, tb, data, {
        ...ste, seed: req.seed, maxIter: req.maxIter, matmul: tfMatMul, activation: config.activation, signal: ctx.signal, onProgress: ctx.onProgress,
      });
      return { result: reportFor(spec, ta, tb, r.perms, r.epochLoss.length), ta, tb };
    }
  }
}

/**
 * Runs B and π(B) on a batch (the request's data, else seeded random inputs) and compares their
 * logits (transformers: seeded random token ids). Skipped, with a log line, when no forward pass
 * exists for the family or the model config cannot be completed (a transformer's head count).
 */
async function equivalence(req: AlignRequest, b: Checkpoint, loaded: TensorMap, spec: PermSpec, perms: Permutations, family: string | undefined, ctx: HandlerContext): Promise<EquivalenceReport | undefined> {
  ctx.onProgress({ stage: 'equivalence', message: 'checking that π(B) computes the same function as B' });
  const all = new Map<string, DenseTensor>();
  for (const name of floatNames(b)) {
    throwIfCancelled(ctx.signal, 'align');
    all.set(name, loaded.get(name) ?? { shape: b.get(name)!.shape, data: await b.readFloat32(name) });
  }
  try {
    const config = readModelConfig(req.a, req.model);
    // Transformers (by their naming, whatever the spec file says) run on seeded random token ids.
    if (family === 'transformer' || detectTransformer(b.tensors)) {
      if (req.data) ctx.log('equivalence: transformers run on random token ids; the data set is not used for this check');
      const r = checkTransformerEquivalence(all, applyPermutations(spec, perms, all), spec, perms, config, req.seed);
      ctx.log(`equivalence: ${r.description}`);
      return r.report;
    }
    const data = req.data ? await loadDataset({ ...req.data, limit: EQUIVALENCE_EXAMPLES }, req.data.split === 'train' ? 'train' : 'test') : undefined;
    return checkPermutedEquivalence(all, applyPermutations(spec, perms, all), config, data, req.seed);
  } catch (e) {
    if (e instanceof ModelError && e.kind !== 'ConfigInvalid') {
      ctx.log(`equivalence check skipped: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

export async function alignHandler(req: AlignRequest, ctx: HandlerContext): Promise<AlignResult> {
  const started = performance.now();
  if (req.out !== undefined) assertOutNotInput(req.out, [req.a, req.b]);
  const [a, b] = await openAll([req.a, req.b]);
  try {
    ctx.onProgress({ stage: 'loading', message: `reading ${base(req.a)} and ${base(req.b)}` });
    const { spec, family, notes } = await specFor(req.spec, a, [b]);
    for (const n of notes) ctx.log(`spec: ${n}`);
    const { result: wm, ta, tb } = await findPermutations(req, a, b, spec, ctx);
    throwIfCancelled(ctx.signal, 'align');

    let matrices: GroupMatrices[] | undefined;
    if (req.includeMatrices) {
      ctx.onProgress({ stage: 'matrices', message: 'similarity matrices before and after' });
      const identity = identityPermutations(spec);
      matrices = [];
      for (const name of Object.keys(spec.perms).sort()) {
        throwIfCancelled(ctx.signal, 'align');
        matrices.push({
          name,
          size: spec.perms[name],
          before: await similarityMatrixWith(spec, ta, tb, identity, name, tfMatMul),
          after: await similarityMatrixWith(spec, ta, tb, wm.perms, name, tfMatMul),
        });
        await new Promise<void>((r) => setImmediate(r));
      }
    }

    const equivalenceReport = await equivalence(req, b, tb, spec, wm.perms, family, ctx);
    if (equivalenceReport && !equivalenceReport.ok) ctx.log(`equivalence check failed: ${equivalenceReport.message ?? ''}`);

    if (req.out !== undefined) {
      ctx.onProgress({ stage: 'writing', message: `writing ${base(req.out)}` });
      const metadata = provenanceMetadata(b.metadata, { tool: TOOL, version: VERSION, method: req.method, reference: req.a, seed: req.seed });
      await writePermuted(req.out, b, spec, wm.perms, metadata, [req.a, req.b], ctx.signal);
    }
    return {
      method: req.method,
      seconds: (performance.now() - started) / 1000,
      iterations: wm.iterations,
      objectiveBefore: wm.objectiveBefore,
      objectiveAfter: wm.objectiveAfter,
      perms: permsAsArrays(wm.perms),
      ...(req.out !== undefined ? { out: req.out } : {}),
      backend: currentBackend(),
      ...(family !== undefined ? { family } : {}),
      groups: wm.groups,
      distance: specDistances(spec, ta, tb, wm.perms),
      ...(matrices ? { matrices } : {}),
      ...(equivalenceReport ? { equivalence: equivalenceReport } : {}),
    };
  } finally {
    await closeAll([a, b]);
  }
}
