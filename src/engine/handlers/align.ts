/**
 * `align` request: find the permutations that align checkpoint B to A (Git Re-Basin section 3:
 * weight matching, Algorithm 1; activation matching, section 3.1; the straight-through
 * estimator, Algorithm 2), optionally return per-group similarity matrices, check that π(B)
 * computes the same function as B when a forward pass exists for the family, and write π(B)
 * with B's dtypes and non-spec tensors unchanged.
 */
import type { Checkpoint, DenseTensor, PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import { loadDataset } from '../../core/data';
import { applyPermutations, axisPermsOf, axisPermutations, gatherAxes, identityPermutations } from '../../core/matching/permute';
import { denseOf, float32Of, heldBytes, valuesOf, type HeldTensorMap } from '../../core/heldTensor';
import { blockSimilarityWith, similarityMatrixWith, type WeightMatchingResult } from '../../core/matching/weightMatching';
import { matchingHolding, memoryBudgetOf } from '../methods/common';
import { writeCheckpointOutput } from '../../core/hf/layout';
import { unstackSources } from '../../core/moe/expertStack';
import { provenanceMetadata, type TensorSource } from '../../core/safetensors';
import { currentBackend } from '../backend';
import { readModelConfig } from '../compute/modelConfig';
import { ModelError } from '../compute/modelErrors';
import type { HandlerContext } from '../handlerContext';
import { EngineError, throwIfCancelled } from '../errors';
import { checkFamilyEquivalence } from '../families/equivalence';
import { base, closeAll, isFloatDtype, loadHeldTensors, loadTensors, openAll, permuteRawBytes, specFor, type LoadOptions } from '../loadTensors';
import { streamTensors, type StreamStats } from '../streamedTensors';
import { formatBytes } from '../../../shared/bytes';
import { assertOutNotInput } from '../methods/common';
import { MATCHING_METHODS } from '../methods/registry';
import { methodInfo } from '../../core/methods/registry';
import type { AlignRequest, AlignResult, EquivalenceReport, GroupMatrices } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { TOOL, VERSION } from '../version';
import { checkOutput, otherReads } from '../outputCheck';
import { attentionLayers } from '../../core/permspec/attentionLayers';
import { equivalenceOverBudget } from '../../core/memoryPlan';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { defaultsNotice, readLmConfig } from '../lm/config';
import { jobFractions } from '../../core/progressText';
import { alignOrthogonal } from './alignOrthogonal';

/**
 * Each stage's share of an alignment, per method, so the caller's bar moves through reading,
 * matching and writing (each stage reports its own 0..1). Rough weights from timed runs: the
 * matching dominates, reading a large pair is next.
 */
function alignStages(method: AlignRequest['method']): readonly (readonly [readonly string[], number])[] {
  const matching: readonly (readonly [readonly string[], number])[] =
    method === 'ste' ? [[['weight-matching', 'activations'], 0.2], [['ste'], 0.55]] : [[['weight-matching', 'activations'], 0.75]];
  return [[['loading'], 0.15], ...matching, [['matrices'], 0.03], [['equivalence'], 0.03], [['writing'], 0.04]];
}

/** Examples fed to both models by the equivalence check. */
const EQUIVALENCE_EXAMPLES = 64;

/** Euclidean distance over the spec's tensors between A and B, and between A and π(B) (float64 sums). */
export function specDistances(spec: PermSpec, a: HeldTensorMap, b: HeldTensorMap, perms: Permutations): { naive: number; aligned: number } {
  let naive = 0;
  let aligned = 0;
  for (const tensor of Object.keys(spec.axes)) {
    const tb = b.get(tensor)!;
    const x = float32Of(a.get(tensor)!);
    const y = float32Of(tb);
    const z = gatherAxes(valuesOf(tb), tb.shape, axisPermsOf(spec, perms, tensor), tb.shape.map((_, d) => d));
    for (let i = 0; i < x.length; i++) {
      naive += (x[i] - y[i]) ** 2;
      aligned += (x[i] - z[i]) ** 2;
    }
  }
  return { naive: Math.sqrt(naive), aligned: Math.sqrt(aligned) };
}

/**
 * Writes π(B): every tensor of B, spec tensors gathered on their raw bytes (dtype kept exactly),
 * in B's layout (a Hugging Face folder for a folder or sharded B, unless `out` ends in .safetensors).
 */
export async function writePermuted(
  out: string, b: Checkpoint, spec: PermSpec, perms: Permutations, metadata: Record<string, string>, inputs: readonly string[], signal: AbortSignal,
  opts: { readonly alsoReads?: readonly string[]; readonly layoutOf?: string; readonly onShard?: (index: number, count: number, file: string) => void } = {},
): Promise<void> {
  const sources: TensorSource[] = b.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    byteLength: t.byteLength,
    read: async () => permuteRawBytes(await b.readRaw(t.name), t.dtype, t.shape, axisPermutations(spec, perms, t.name, t.shape.length), b.path, t.name),
  }));
  await writeCheckpointOutput(out, opts.layoutOf ?? b.path, unstackSources(sources, b), { metadata, inputs, alsoReads: opts.alsoReads, signal, onShard: opts.onShard });
}

function permsAsArrays(perms: Permutations): Record<string, number[]> {
  return Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, Array.from(v)]));
}

function floatNames(ck: Checkpoint): string[] {
  return ck.tensors.filter((t) => isFloatDtype(t.dtype)).map((t) => t.name);
}

/** Runs the requested method and reports it like weight matching. */
async function findPermutations(req: AlignRequest, a: Checkpoint, b: Checkpoint, spec: PermSpec, ctx: HandlerContext): Promise<{ result: WeightMatchingResult; ta: HeldTensorMap; tb: HeldTensorMap }> {
  const zeroed = new Set<string>();
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal, zeroNonFinite: zeroed };
  const zeroedLine = (): void => {
    if (zeroed.size) ctx.log(`align: NaN/Inf weights of ${zeroed.size} tensor(s) count as 0 for matching (first: \`${[...zeroed][0]}\`); they are written unchanged`);
  };
  // Data-driven methods run forward passes, which need every float tensor, not only the spec's.
  const names = !methodInfo(req.method).needsData ? Object.keys(spec.axes) : [...new Set([...Object.keys(spec.axes), ...floatNames(a)])];
  if (req.outOfCore && req.method !== 'weight') throw new EngineError('InvalidRequest', `out-of-core matching (--out-of-core) is for weight matching, not --method ${req.method}`);
  const holding = req.method === 'weight' ? matchingHolding(spec, a, b, memoryBudgetOf(req), { outOfCore: req.outOfCore }) : 'held';
  const method = MATCHING_METHODS[req.method];
  if (holding === 'streamed') return streamedMatching(req, a, b, spec, names, opts, ctx).finally(zeroedLine);
  // Loading a 1B pair takes minutes: say how far it is (both models count as one job).
  const started = performance.now();
  const reading = (offset: number) => (done: number, total: number): void =>
    ctx.onProgress({ stage: 'loading', message: `Reading ${base(req.a)} and ${base(req.b)}: ${offset + done} of ${2 * total} tensors`, fraction: (offset + done) / (2 * total) });
  const load = method.keepsStoredDtype ? loadHeldTensors : loadTensors;
  const ta = await load(a, names, opts, reading(0));
  const tb = await load(b, names, opts, reading(names.length));
  const bytes = [...ta.values(), ...tb.values()].reduce((s, t) => s + heldBytes(t), 0);
  const how = method.keepsStoredDtype ? 'BF16 and F16 as stored, the rest as float32' : 'as float32';
  ctx.log(`align: read ${2 * names.length} tensors (${(bytes / 2 ** 30).toFixed(2)} GiB, ${how}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  zeroedLine();
  throwIfCancelled(ctx.signal, 'align');
  return { result: await method.run({ req, spec, a: ta, b: tb, ctx }), ta, tb };
}

/**
 * Weight matching out of core (the pair as stored is over the memory budget, or --out-of-core):
 * A's and B's tensors are read from their files each time a product needs them
 * (src/engine/streamedTensors.ts); the log says what was read and the most held at once.
 */
async function streamedMatching(
  req: AlignRequest, a: Checkpoint, b: Checkpoint, spec: PermSpec, names: readonly string[], opts: LoadOptions, ctx: HandlerContext,
): Promise<{ result: WeightMatchingResult; ta: HeldTensorMap; tb: HeldTensorMap }> {
  const stored = names.reduce((s, n) => s + (a.get(n)?.byteLength ?? 0) + (b.get(n)?.byteLength ?? 0), 0);
  const why = req.outOfCore ? 'asked for (--out-of-core)' : `the pair as stored (${formatBytes(stored)}) is over the memory budget of ${formatBytes(memoryBudgetOf(req))}`;
  ctx.log(`align: out of core, ${why}: tensors are read from disk as each product needs them`);
  ctx.onProgress({ stage: 'loading', message: `Reading ${base(req.a)} and ${base(req.b)} from disk as matching needs them (out of core)` });
  const sa = streamTensors(a, names, opts);
  const sb = streamTensors(b, names, opts);
  const started = performance.now();
  const result = await MATCHING_METHODS[req.method].run({ req, spec, a: sa.tensors, b: sb.tensors, ctx });
  ctx.log(`align: out of core: ${streamReport([sa.stats, sb.stats])}; matching took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { result, ta: sa.tensors, tb: sb.tensors };
}

/** "read 2,328 tensors (108 GB, page cache included) in 101.8 s of reads; at most 524 MB (524,288,000 bytes) of tensors held at once". */
export function streamReport(stats: readonly StreamStats[]): string {
  const reads = stats.reduce((s, x) => s + x.reads, 0);
  const bytes = stats.reduce((s, x) => s + x.bytesRead, 0);
  const seconds = stats.reduce((s, x) => s + x.readSeconds, 0);
  const peak = stats.reduce((s, x) => s + x.peakHeldBytes, 0);
  return `read ${reads.toLocaleString('en-US')} tensors (${formatBytes(bytes)}, page cache included) in ${seconds.toFixed(1)} s of reads; at most ${formatBytes(peak)} (${peak.toLocaleString('en-US')} bytes) of tensors held at once`;
}

/**
 * Runs B and π(B) on a batch (the request's data, else seeded random inputs) and compares their
 * logits (transformers: seeded random token ids). Skipped, with a log line, when no forward pass
 * exists for the family or the model config cannot be completed (a transformer's head count).
 */
async function equivalence(req: AlignRequest, b: Checkpoint, loaded: HeldTensorMap, spec: PermSpec, perms: Permutations, ctx: HandlerContext): Promise<EquivalenceReport | undefined> {
  // The check holds π(B) and the backend's copy of one model beside A and B (float32): 4 models,
  // and beside what the process holds now (measured: the runtime, A and B, what matching left).
  const modelBytes = floatNames(b).reduce((sum, name) => sum + 4 * b.get(name)!.shape.reduce((p, d) => p * d, 1), 0);
  const budget = memoryBudgetOf(req);
  const skip = equivalenceOverBudget(modelBytes, process.memoryUsage.rss(), budget);
  if (skip) {
    ctx.log(`equivalence check skipped: ${skip}`);
    return undefined;
  }
  ctx.onProgress({ stage: 'equivalence', message: 'Checking that π(B) computes the same function as B' });
  const all = new Map<string, DenseTensor>();
  for (const name of floatNames(b)) {
    throwIfCancelled(ctx.signal, 'align');
    const held = loaded.get(name);
    all.set(name, held ? denseOf(held) : { shape: b.get(name)!.shape, data: await b.readFloat32(name) });
  }
  try {
    const config = readModelConfig(req.a, req.model);
    const data = req.data ? () => loadDataset({ ...req.data!, limit: EQUIVALENCE_EXAMPLES }, req.data!.split === 'train' ? 'train' : 'test', { budget }) : undefined;
    // A Hugging Face checkpoint (config.json beside it) runs through its LM forward pass; without a model config override.
    const lmConfig = req.model === undefined && lmCheckpointFamily(req.b) ? await readLmConfig(locateLmCheckpoint(req.b).config) : undefined;
    return await checkFamilyEquivalence(
      { b: all, piB: applyPermutations(spec, perms, all), spec, perms, config, seed: req.seed, ...(lmConfig ? { lmConfig } : {}) },
      data,
      (l) => ctx.log(l),
    );
  } catch (e) {
    if (e instanceof ModelError && e.kind !== 'ConfigInvalid') {
      ctx.log(`equivalence check skipped: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

/** The defaults-taken notices of A's and B's config.json (language models only). */
async function configDefaultsOf(paths: readonly string[]): Promise<string[]> {
  const lines: string[] = [];
  for (const p of paths) {
    if (!lmCheckpointFamily(p)) continue;
    try {
      const notice = defaultsNotice(await readLmConfig(locateLmCheckpoint(p).config));
      if (notice) lines.push(notice);
    } catch (e) {
      // A config the forward pass cannot use is refused where it is used (spec, equivalence).
      if (!(e instanceof ModelError)) throw e;
    }
  }
  return lines;
}

/**
 * π(B)'s metadata: B's own entries untouched (its training seed stays `rebasin.seed`), the
 * alignment's under `rebasin.align.*`, and `rebasin.tool` marking a file Re-Basin wrote.
 */
export function alignedMetadata(bMetadata: Readonly<Record<string, string>>, req: Pick<AlignRequest, 'method' | 'a' | 'seed'>): Record<string, string> {
  const own = provenanceMetadata({}, { tool: TOOL, version: VERSION, method: req.method, reference: req.a, seed: req.seed });
  const out: Record<string, string> = { ...bMetadata, 'rebasin.tool': TOOL };
  for (const [key, value] of Object.entries(own)) if (key !== 'rebasin.tool') out[key.replace(/^rebasin\./, 'rebasin.align.')] = value;
  return out;
}

export async function alignHandler(req: AlignRequest, context: HandlerContext): Promise<AlignResult> {
  const started = performance.now();
  // Progress as a fraction of the whole alignment, whatever the stage.
  const whole = jobFractions(alignStages(req.method));
  const ctx: HandlerContext = { ...context, onProgress: (p) => context.onProgress(whole(p)) };
  if (req.symmetry === 'orthogonal') return alignOrthogonal(req, ctx);
  if (req.out !== undefined) await checkOutput(req.out, [req.a, req.b], req, req.b);
  const [a, b] = await openAll([req.a, req.b]);
  try {
    ctx.onProgress({ stage: 'loading', message: `Reading ${base(req.a)} and ${base(req.b)}` });
    const { spec, family, notes } = await specFor(req.spec, a, [b], req.model);
    for (const n of notes) ctx.log(`spec: ${n}`);
    const configDefaults = await configDefaultsOf([req.a, req.b]);
    const { result: wm, ta, tb } = await findPermutations(req, a, b, spec, ctx);
    throwIfCancelled(ctx.signal, 'align');

    let matrices: GroupMatrices[] | undefined;
    if (req.includeMatrices) {
      ctx.onProgress({ stage: 'matrices', message: 'Similarity matrices for the heatmaps' });
      const identity = identityPermutations(spec);
      matrices = [];
      for (const name of Object.keys(spec.perms).sort()) {
        throwIfCancelled(ctx.signal, 'align');
        const blocks = spec.blocks?.[name] ?? 1;
        if (blocks > 1) {
          // Only the diagonal head_dim blocks (the rest is zero): a 768-wide GPT-2 group is 12 × 64²
          // values instead of 768². "Before" is B with every permutation applied but this one: the
          // same matched heads as "after" (A's head g, B's head π_outer(g)), their dims unpermuted.
          const allButThis = { ...wm.perms, [name]: identity[name] };
          matrices.push({
            name,
            size: spec.perms[name],
            blocks,
            before: await blockSimilarityWith(spec, ta, tb, allButThis, name, tfMatMul),
            after: await blockSimilarityWith(spec, ta, tb, wm.perms, name, tfMatMul),
          });
        } else {
          matrices.push({
            name,
            size: spec.perms[name],
            before: await similarityMatrixWith(spec, ta, tb, identity, name, tfMatMul),
            after: await similarityMatrixWith(spec, ta, tb, wm.perms, name, tfMatMul),
          });
        }
        await new Promise<void>((r) => setImmediate(r));
      }
    }

    const attention = attentionLayers(spec);
    const equivalenceReport = await equivalence(req, b, tb, spec, wm.perms, ctx);
    if (equivalenceReport && !equivalenceReport.ok) ctx.log(`equivalence check failed: ${equivalenceReport.message ?? ''}`);

    // A failed equivalence check writes nothing unless the request asks to keep the output.
    const write = req.out !== undefined && (!equivalenceReport || equivalenceReport.ok || req.keepOnMismatch === true);
    if (req.out !== undefined && write) {
      ctx.onProgress({ stage: 'writing', message: `Writing ${base(req.out)}` });
      const metadata = alignedMetadata(b.metadata, req);
      await writePermuted(req.out, b, spec, wm.perms, metadata, [req.a, req.b], ctx.signal, {
        alsoReads: otherReads(req, req.a),
        layoutOf: req.b,
        onShard: (i, n) => ctx.onProgress({ stage: 'writing', message: `Writing π(B): shard ${i + 1} of ${n}`, fraction: i / n }),
      });
    }
    return {
      method: req.method,
      seconds: (performance.now() - started) / 1000,
      iterations: wm.iterations,
      objectiveBefore: wm.objectiveBefore,
      objectiveAfter: wm.objectiveAfter,
      objectiveFixed: wm.objectiveFixed,
      ...(configDefaults.length > 0 ? { configDefaults } : {}),
      perms: permsAsArrays(wm.perms),
      ...(req.out !== undefined && write ? { out: req.out } : {}),
      ...(req.out !== undefined ? { written: write } : {}),
      backend: currentBackend(),
      ...(family !== undefined ? { family } : {}),
      groups: wm.groups,
      distance: specDistances(spec, ta, tb, wm.perms),
      ...(matrices ? { matrices } : {}),
      ...(matrices && attention.length > 0 ? { attention } : {}),
      ...(equivalenceReport ? { equivalence: equivalenceReport } : {}),
    };
  } finally {
    await closeAll([a, b]);
  }
}
