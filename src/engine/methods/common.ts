/**
 * What the matching methods' engine modules share: weight matching with the tfjs products,
 * reports on weight matching's scale, and the training data of the data-driven methods.
 */
import * as path from 'node:path';
import type { Checkpoint, PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import { loadDataset, type Dataset } from '../../core/data';
import { entryPermNames } from '../../core/blockAxis';
import { axisPermsOf, dotProduct, identityPermutations, permuteTensor } from '../../core/matching/permute';
import { isRunningStatistic, objectiveTerm, weightMatching, type GroupReport, type WeightMatchingResult } from '../../core/matching/weightMatching';
import { defaultMemoryBudget, MemoryBudgetError, OVER_BUDGET } from '../../core/memoryBudget';
import { chooseHolding } from '../../core/memoryPlan';
import type { HandlerContext } from '../handlerContext';
import { EngineError } from '../errors';
import { base } from '../loadTensors';
import { canStream, streamKeepBytes, streamStats } from '../streamedTensors';
import type { AlignRequest, DataOptions } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { scaledForMatching, scaledWithStartingDots, unscaledObjectives } from '../matchingScale';
import { permutationWords } from '../../core/progressText';
import { heldBytes, isHalfDtype, type HeldTensorMap } from '../../core/heldTensor';

/** Refuses an output path that is (textually) one of the inputs, before any work is done. */
export function assertOutNotInput(out: string, inputs: readonly string[]): void {
  const o = path.resolve(out);
  for (const i of inputs) {
    if (path.resolve(i) === o) throw new EngineError('InvalidRequest', `${base(out)}: refusing to write over an input: choose another output path`, out);
  }
}

/** The request's memory budget in bytes, else half of physical memory. */
export function memoryBudgetOf(req: { readonly memoryBudget?: number }): number {
  return req.memoryBudget ?? defaultMemoryBudget();
}

/**
 * How weight matching will hold the pair, decided before any tensor is read: 'held' (both models
 * in memory as stored: 16-bit tensors at 2 bytes a value) when that fits the budget, else
 * 'streamed' (out of core, src/engine/streamedTensors.ts) when the checkpoints can be read on
 * demand and one solve fits beside the readers; `outOfCore` asks for 'streamed' anyway. Refuses
 * in one line naming B, the permutation and the bytes needed when neither fits.
 */
export function matchingHolding(spec: PermSpec, a: Checkpoint, b: Checkpoint, budget: number, opts: { readonly outOfCore?: boolean; readonly mayStream?: boolean } = {}): 'held' | 'streamed' {
  const outOfCore = opts.outOfCore ?? false;
  const shapes = new Map<string, readonly number[]>();
  let held = 0;
  const names = Object.keys(spec.axes);
  for (const name of names) {
    for (const ck of [a, b]) {
      const info = ck.get(name);
      if (!info) continue;
      if (ck === a) shapes.set(name, info.shape);
      // As `readHeld` holds it (align and two-model merge): 16-bit floats as stored.
      held += (isHalfDtype(info.dtype) ? 2 : 4) * info.shape.reduce((p, s) => p * s, 1);
    }
  }
  const streamable = (opts.mayStream ?? true) && canStream(a) && canStream(b);
  if (outOfCore && !streamable) {
    throw new EngineError('InvalidRequest', `${base(b.path)}: out-of-core matching reads safetensors checkpoints only; convert the pair or leave out --out-of-core`, b.path);
  }
  try {
    // The process before the models are read: Node, the backend, the workers (measured).
    return chooseHolding(spec, shapes, {
      budget, heldBytes: held, outOfCore, runtimeBytes: process.memoryUsage.rss(), counted: (t) => !isRunningStatistic(t),
      ...(streamable ? { streamedBytes: streamKeepBytes(a, names) + streamKeepBytes(b, names) } : {}),
    }).holding;
  } catch (e) {
    if (e instanceof MemoryBudgetError) throw new EngineError(OVER_BUDGET, `${base(b.path)}: ${e.message}`, b.path);
    throw e;
  }
}

/** Refuses, before any tensor is read, a weight matching whose models held in memory do not fit the budget (merge). */
export function checkMatchingMemory(spec: PermSpec, a: Checkpoint, b: Checkpoint, budget: number): void {
  matchingHolding(spec, a, b, budget, { mayStream: false });
}

/** Weight matching with the tfjs cost-matrix products (ctx progress and cancellation wired). */
export async function matchWeights(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, seed: number, maxIter: number, ctx: HandlerContext, memoryBudget?: number): Promise<WeightMatchingResult> {
  // Weights near the float32 limit are matched at a power-of-two scale (same permutations).
  // Out of core, that pass also gives the objective before matching: the pair is read once, not twice.
  const streamed = [streamStats(a), streamStats(b)];
  const outOfCore = streamed.some((s) => s !== undefined);
  const { a: sa, b: sb, startingDots } = outOfCore ? scaledWithStartingDots(spec, a, b) : { a: scaledForMatching(a), b: scaledForMatching(b), startingDots: undefined };
  // The budget is the whole process's: what it holds besides the models (Node, the tfjs backend,
  // the native library: 0.5 to 1 GB measured at 1B parameters) comes out of the cache.
  // Out of core, the models are not held: their readers keep at most a tensor each (reserved here).
  const modelBytes = [...a.values(), ...b.values()].reduce((sum, t) => sum + heldBytes(t), 0);
  const readerBytes = streamed.reduce((sum, s) => sum + (s ? s.keepBytes - s.heldBytes : 0), 0);
  const reservedBytes = Math.max(0, process.memoryUsage().rss - modelBytes) + readerBytes;
  const r = await weightMatching(spec, sa.tensors, sb.tensors, {
    seed, maxIter, matmul: tfMatMul, signal: ctx.signal, onProgress: ctx.onProgress, memoryBudget, reservedBytes, residentBytes: () => process.memoryUsage.rss(),
    readsFromDisk: outOfCore, startingDots,
    // Where each solve's time went, for the debug log (the scale bench sums these lines).
    onSolved: (s) => ctx.log(`weight matching: sweep ${s.sweep + 1}, ${permutationWords(s.name)} (${s.units} units): cost matrix ${s.productSeconds.toFixed(2)} s${outOfCore ? ' (products and reads)' : ''}, assignment ${s.assignmentSeconds.toFixed(2)} s`),
  });
  return unscaledObjectives(r, 1 / (sa.factor * sb.factor));
}

/**
 * Weight matching's objective for given permutations, total and per group (sum over the
 * (tensor, axis) pairs a group acts on of <A_t, π(B)_t>), as weightMatching reports it: used to
 * report data-driven methods on the same scale.
 */
export function groupObjectives(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Permutations): { total: number; fixed: number; groups: Map<string, number> } {
  const groups = new Map<string, number>(Object.keys(spec.perms).map((p) => [p, 0]));
  let total = 0;
  let fixed = 0;
  for (const [tensor, axes] of Object.entries(spec.axes)) {
    const term = objectiveTerm(spec, tensor);
    if (term === 'excluded') continue;
    const d = dotProduct(a.get(tensor)!.data, permuteTensor(b.get(tensor)!, axisPermsOf(spec, perms, tensor)).data);
    if (term === 'fixed') {
      fixed += d;
      continue;
    }
    total += d;
    for (const p of new Set(axes.flatMap(entryPermNames))) groups.set(p, groups.get(p)! + d);
  }
  return { total, fixed, groups };
}

/** Weight matching's report for permutations another method found. */
export function reportFor(spec: PermSpec, a: TensorMap, b: TensorMap, perms: Permutations, iterations: number): WeightMatchingResult {
  const before = groupObjectives(spec, a, b, identityPermutations(spec));
  const after = groupObjectives(spec, a, b, perms);
  const groups: GroupReport[] = Object.keys(spec.perms).sort().map((name) => ({
    name,
    size: spec.perms[name],
    moved: perms[name].reduce((m, v, i) => m + (v !== i ? 1 : 0), 0),
    objectiveBefore: before.groups.get(name)!,
    objectiveAfter: after.groups.get(name)!,
  }));
  return { perms: { ...perms }, iterations, objectiveBefore: before.total, objectiveAfter: after.total, objectiveFixed: before.fixed, groups };
}

/** Training examples for the data-driven methods (activation matching and STE learn on train). */
export function trainingData(req: AlignRequest): Promise<Dataset> {
  const data: DataOptions | undefined = req.data;
  if (!data) throw new EngineError('InvalidRequest', `${req.method} matching needs data (--data): it runs both models on examples`);
  return loadDataset(data, data.split === 'test' ? 'test' : 'train', { budget: memoryBudgetOf(req) });
}

