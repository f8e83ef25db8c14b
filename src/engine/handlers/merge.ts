/**
 * `merge` request. Two inputs: align B to A by weight matching (unless `align` is false), then
 * write (1−λ)·A + λ·π(B) for every floating-point tensor. Three or more: MergeMany (Git Re-Basin
 * Algorithm 3) aligns every model to the consensus, then the uniform mean is written. Non-float
 * tensors (integer counters, masks) are copied from the reference, inputs[0].
 */
import type { Checkpoint, DenseTensor, PermSpec, Permutations, TensorInfo } from '../../core/checkpoint';
import { interpolate, mergeMany } from '../../core/matching/merge';
import { axisPermutations, permuteTensor } from '../../core/matching/permute';
import { writeCheckpointOutput } from '../../core/hf/layout';
import { unstackSources } from '../../core/moe/expertStack';
import { decodeToFloat32, ENCODABLE_DTYPES, encodeFromFloat32, provenanceMetadata, type TensorSource } from '../../core/safetensors';
import { currentBackend } from '../backend';
import type { HandlerContext } from '../handlerContext';
import { EngineError, throwIfCancelled } from '../errors';
import { assertCompatible, base, closeAll, isFloatDtype, loadHeldTensors, loadTensors, openAll, readChecked, specFor } from '../loadTensors';
import { denseOf, type HeldTensor } from '../../core/heldTensor';
import type { MergeRequest, MergeResult } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { TOOL, VERSION } from '../version';
import { checkMatchingMemory, matchWeights, memoryBudgetOf } from '../methods/common';
import { checkOutput, otherReads } from '../outputCheck';
import { jobFractions } from '../../core/progressText';
import { foldedMergeReference } from '../../core/symmetry/mergePartner';
import { repairedMerge, type RepairInfo } from './mergeRepair';

/** Each stage's share of a merge, so the caller's bar moves through reading, matching and writing. */
const MERGE_STAGES = [[['loading'], 0.1], [['weight-matching', 'merge-many'], 0.7], [['repair'], 0.1], [['writing'], 0.1]] as const;

/** Bits of an encodable float dtype (wider holds more), 0 for others. */
const FLOAT_BITS: Readonly<Record<string, number>> = { F16: 16, BF16: 16, F32: 32, F64: 64 };
/** Largest finite magnitude before rounding to Inf: F16 rounds values below 65520 to 65504. */
const FINITE_LIMIT: Readonly<Record<string, number>> = { F16: 65520, BF16: 3.3961775292e38 };

/**
 * A merged float tensor is written in the reference's dtype when every input has that dtype and
 * we can encode it; when the inputs differ (an F16 model merged with an F32 one) in the wider
 * of them; else as F32.
 */
function outputDtype(info: TensorInfo, others: readonly (TensorInfo | undefined)[] = []): string {
  let dtype = ENCODABLE_DTYPES.includes(info.dtype) ? info.dtype : 'F32';
  for (const o of others) {
    if (!o || o.dtype === dtype) continue;
    const wider = ENCODABLE_DTYPES.includes(o.dtype) ? o.dtype : 'F32';
    if ((FLOAT_BITS[wider] ?? 32) > (FLOAT_BITS[dtype] ?? 32) || (FLOAT_BITS[wider] === FLOAT_BITS[dtype] && wider !== dtype)) {
      dtype = (FLOAT_BITS[wider] ?? 32) > 16 ? wider : 'F32'; // F16 with BF16: neither holds the other, write F32
    }
  }
  return dtype;
}

/** Refuses, naming the tensor, a merged value that is finite but would be written as Inf. */
function assertFits(dtype: string, values: Float32Array, file: string, tensor: string): void {
  const limit = FINITE_LIMIT[dtype];
  if (limit === undefined) return;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && Math.abs(v) >= limit) {
      throw new EngineError('InvalidRequest', `${base(file)}: merged tensor \`${tensor}\` has value ${v.toPrecision(6)}, beyond the range of ${dtype} (it would be written as Inf)`, file);
    }
  }
}

function mergedSource(info: TensorInfo, out: string, others: readonly (TensorInfo | undefined)[], compute: () => Promise<Float32Array>): TensorSource {
  const dtype = outputDtype(info, others);
  return {
    name: info.name,
    dtype,
    shape: info.shape,
    read: async () => {
      const values = await compute();
      assertFits(dtype, values, out, info.name);
      return encodeFromFloat32(dtype, values);
    },
  };
}

function rawSource(ck: Checkpoint, info: TensorInfo): TensorSource {
  return { name: info.name, dtype: info.dtype, shape: info.shape, byteLength: info.byteLength, read: () => ck.readRaw(info.name) };
}

/** The float tensors of the reference written in another dtype than its own (inputs of mixed dtypes, or not encodable). */
function widenedTensors(cks: readonly Checkpoint[]): { name: string; from: string; to: string }[] {
  const ref = cks[0];
  return ref.tensors
    .filter((t) => isFloatDtype(t.dtype))
    .map((t) => ({ name: t.name, from: t.dtype, to: outputDtype(t, cks.slice(1).map((c) => c.get(t.name))) }))
    .filter((w) => w.to !== w.from);
}

/** What a merge writes: its tensors' sources, how the inputs were aligned, and REPAIR's report when asked. */
interface MergeSources {
  readonly sources: TensorSource[];
  readonly method: MergeResult['method'];
  readonly repair?: RepairInfo;
}

async function mergeTwo(req: MergeRequest, a: Checkpoint, b: Checkpoint, ctx: HandlerContext): Promise<MergeSources> {
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
  let spec: PermSpec = { perms: {}, axes: {} };
  let perms: Permutations = {};
  // As weight matching holds them: a BF16 pair at 2 bytes a value.
  let loadedA = new Map<string, HeldTensor>();
  let loadedB = new Map<string, HeldTensor>();
  if (req.align) {
    spec = (await specFor(req.spec, a, [b])).spec;
    const names = Object.keys(spec.axes);
    const zeroed = new Set<string>();
    checkMatchingMemory(spec, a, b, memoryBudgetOf(req));
    loadedA = await loadHeldTensors(a, names, { ...opts, zeroNonFinite: zeroed });
    loadedB = await loadHeldTensors(b, names, { ...opts, zeroNonFinite: zeroed });
    perms = (await matchWeights(spec, loadedA, loadedB, req.seed, req.maxIter, ctx, memoryBudgetOf(req))).perms;
    // Tensors zeroed for matching are re-read, so their NaN/Inf carry into the merge as they are.
    for (const name of zeroed) {
      loadedA.delete(name);
      loadedB.delete(name);
    }
  } else {
    assertCompatible(a, b);
  }
  if (req.repair) return repairedSources(req, a, b, spec, perms, ctx);
  const sources = a.tensors.map((info): TensorSource => {
    if (!isFloatDtype(info.dtype)) return rawSource(a, info);
    return mergedSource(info, req.out, [b.get(info.name)], async () => {
      throwIfCancelled(ctx.signal, 'merge');
      const heldA = loadedA.get(info.name);
      const heldB = loadedB.get(info.name);
      const ta = heldA ? denseOf(heldA) : await readChecked(a, info.name, opts);
      const tb0 = heldB ? denseOf(heldB) : await readChecked(b, info.name, opts);
      const tb = permuteTensor(tb0, axisPermutations(spec, perms, info.name, info.shape.length));
      // Free the loaded copies as soon as each tensor is written.
      loadedA.delete(info.name);
      loadedB.delete(info.name);
      return interpolate(new Map([[info.name, ta]]), new Map([[info.name, tb]]), req.lambda).get(info.name)!.data;
    });
  });
  return { sources, method: req.align ? 'weight' : 'none' };
}

/**
 * merge --repair (mergeRepair.ts): A and pi(B) whole in float32, the repaired merge computed from
 * them, and its tensors written in the dtypes a plain merge writes. Before anything is written,
 * the tensors as the file will hold them run against the repaired model: a difference over the
 * tolerance refuses (for a 32-bit output, where they must agree), or (16-bit output: the rounding
 * any merge in that dtype makes) is reported.
 */
async function repairedSources(req: MergeRequest, a: Checkpoint, b: Checkpoint, spec: PermSpec, perms: Permutations, ctx: HandlerContext): Promise<MergeSources> {
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
  const floats = a.tensors.filter((t) => isFloatDtype(t.dtype));
  const names = floats.map((t) => t.name);
  const ta = await loadTensors(a, names, opts);
  const tb = await loadTensors(b, names, opts);
  const piB = new Map(names.map((n) => [n, permuteTensor(tb.get(n)!, axisPermutations(spec, perms, n, tb.get(n)!.shape.length))]));
  tb.clear();
  const repaired = await repairedMerge(req.inputs[0], ta, piB, req.lambda, { data: req.data!, model: req.model, memoryBudget: req.memoryBudget }, ctx);
  ta.clear();
  piB.clear();
  throwIfCancelled(ctx.signal, 'merge');
  const dtypes = new Map(floats.map((info) => [info.name, outputDtype(info, [b.get(info.name)])]));
  const written = new Map(floats.map((info) => {
    const t = repaired.tensors.get(info.name)!;
    const dtype = dtypes.get(info.name)!;
    return [info.name, { shape: t.shape, data: dtype === 'F32' ? t.data : decodeToFloat32(dtype, encodeFromFloat32(dtype, t.data)) }];
  }));
  const check = repaired.check(written, req.seed);
  written.clear();
  const narrow = [...dtypes.values()].some((d) => (FLOAT_BITS[d] ?? 32) < 32);
  if (!check.ok && !narrow) {
    throw new EngineError('InvalidRequest', `${base(req.out)}: the merged weights with REPAIR folded in do not compute the repaired model (${check.message ?? `max |output difference| ${check.maxAbsDiff.toPrecision(3)}`}); nothing was written`, req.out);
  }
  if (!check.ok) ctx.log(`merge --repair: written in 16 bits, the merged model's outputs differ from the float32 repaired model's by up to ${check.maxAbsDiff.toPrecision(3)} (relative ${check.relDiff.toPrecision(3)}), the rounding of that dtype`);
  const sources = a.tensors.map((info): TensorSource => {
    if (!isFloatDtype(info.dtype)) return rawSource(a, info);
    return mergedSource(info, req.out, [b.get(info.name)], async () => {
      throwIfCancelled(ctx.signal, 'merge');
      const t = repaired.tensors.get(info.name)!;
      repaired.tensors.delete(info.name);
      return t.data;
    });
  });
  return { sources, method: req.align ? 'weight' : 'none', repair: { ...repaired.info, check } };
}

async function mergeSeveral(req: MergeRequest, cks: Checkpoint[], ctx: HandlerContext): Promise<MergeSources> {
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
  const ref = cks[0];
  if (!req.align) {
    for (const other of cks.slice(1)) assertCompatible(ref, other);
    const sources = ref.tensors.map((info): TensorSource => {
      if (!isFloatDtype(info.dtype)) return rawSource(ref, info);
      return mergedSource(info, req.out, cks.slice(1).map((c) => c.get(info.name)), async () => {
        const acc = new Float32Array(info.shape.reduce((p, d) => p * d, 1));
        for (const ck of cks) {
          throwIfCancelled(ctx.signal, 'merge');
          const x = (await readChecked(ck, info.name, opts)).data;
          for (let i = 0; i < acc.length; i++) acc[i] += x[i];
        }
        for (let i = 0; i < acc.length; i++) acc[i] /= cks.length;
        return acc;
      });
    });
    return { sources, method: 'none' };
  }
  const { spec } = await specFor(req.spec, ref, cks.slice(1));
  const floatNames = ref.tensors.filter((t) => isFloatDtype(t.dtype)).map((t) => t.name);
  const models: Map<string, DenseTensor>[] = [];
  const zeroed = new Set<string>();
  for (const ck of cks) models.push(await loadTensors(ck, floatNames, { ...opts, zeroNonFinite: zeroed }));
  // Spec tensors with an integer dtype (rare) are not merged: keep the spec to float tensors.
  const floatSet = new Set(floatNames);
  const floatSpec: PermSpec = { perms: spec.perms, axes: Object.fromEntries(Object.entries(spec.axes).filter(([n]) => floatSet.has(n))) };
  const result = await mergeMany(floatSpec, models, { seed: req.seed, maxIter: req.maxIter, matmul: tfMatMul, signal: ctx.signal, onProgress: ctx.onProgress, memoryBudget: memoryBudgetOf(req) });
  models.length = 0;
  const sources = ref.tensors.map((info): TensorSource => {
    if (!isFloatDtype(info.dtype)) return rawSource(ref, info);
    return mergedSource(info, req.out, cks.slice(1).map((c) => c.get(info.name)), async () => {
      const t = result.merged.get(info.name)!;
      result.merged.delete(info.name);
      if (!zeroed.has(info.name)) return t.data;
      // NaN/Inf were zeroed for matching only: average the raw values under the found permutations.
      const acc = new Float32Array(t.data.length);
      for (let k = 0; k < cks.length; k++) {
        const raw = await readChecked(cks[k], info.name, opts);
        const x = permuteTensor(raw, axisPermutations(floatSpec, result.perms[k], info.name, info.shape.length)).data;
        for (let i = 0; i < acc.length; i++) acc[i] += x[i] / cks.length;
      }
      return acc;
    });
  });
  return { sources, method: 'mergemany' };
}

/**
 * B' from align --symmetry orthogonal (its metadata names A'): merged as is with A' in place of
 * A, since B' is aligned to A', not to A.
 */
export async function mergeHandler(req: MergeRequest, context: HandlerContext): Promise<MergeResult> {
  if (req.repair && req.inputs.length !== 2) {
    throw new EngineError('InvalidRequest', `${base(req.inputs[2])}: merge --repair takes two inputs, A and B (REPAIR interpolates two models' statistics; the uniform mean of ${req.inputs.length} has no such pair)`, req.inputs[2]);
  }
  if (req.repair && !req.data) throw new EngineError('InvalidRequest', `${base(req.inputs[0])}: merge --repair needs data (--data) to measure the units' statistics on`, req.inputs[0]);
  const folded = await foldedMergeReference(req.inputs);
  if (req.symmetry === 'orthogonal' && folded === undefined) {
    throw new EngineError('InvalidRequest', `${base(req.inputs[req.inputs.length > 1 ? 1 : 0])}: merge --symmetry orthogonal takes two inputs, A and the B' written by align --symmetry orthogonal (merge's own alignment, weight matching, keeps permutations)`, req.inputs[1]);
  }
  if (folded === undefined) return mergeInputs(req, context);
  context.log(`merge: ${base(req.inputs[1])} is aligned to ${base(folded)} (A with folded norms, align --symmetry orthogonal): merging it with that, as is`);
  const r = await mergeInputs({ ...req, inputs: [folded, req.inputs[1]], align: false }, context);
  return { ...r, inputs: [...req.inputs], symmetry: 'orthogonal', referenceFolded: folded };
}

async function mergeInputs(req: MergeRequest, context: HandlerContext): Promise<MergeResult> {
  const whole = jobFractions(MERGE_STAGES);
  const ctx: HandlerContext = { ...context, onProgress: (p) => context.onProgress(whole(p)) };
  const started = performance.now();
  await checkOutput(req.out, req.inputs, req, req.inputs[0]);
  const cks = await openAll(req.inputs);
  try {
    ctx.onProgress({ stage: 'loading', message: `Reading ${req.inputs.length} checkpoints` });
    const { sources, method, repair } = cks.length === 2 ? await mergeTwo(req, cks[0], cks[1], ctx) : await mergeSeveral(req, cks, ctx);
    throwIfCancelled(ctx.signal, 'merge');
    const widened = widenedTensors(cks);
    if (widened.length) ctx.log(`merge: ${widened.length} tensor(s) written as ${widened[0].to} instead of ${widened[0].from} (first: \`${widened[0].name}\`)`);
    ctx.onProgress({ stage: 'writing', message: `Writing ${base(req.out)}` });
    const lambda = cks.length === 2 ? req.lambda : 1 / cks.length;
    // The merge's own provenance: the reference's rebasin.* entries (its training, seed or an
    // earlier alignment) describe another file and are dropped; its other metadata is kept.
    const inherited = Object.fromEntries(Object.entries(cks[0].metadata).filter(([k]) => !k.startsWith('rebasin.')));
    const metadata = provenanceMetadata(inherited, {
      tool: TOOL,
      version: VERSION,
      method: method === 'none' ? 'merge' : `merge-${method}`,
      reference: req.inputs[0],
      seed: req.seed,
      lambda,
      inputs: req.inputs.join(','),
    });
    // In the reference's layout: a Hugging Face folder when inputs[0] is one (core/hf/layout.ts).
    await writeCheckpointOutput(req.out, req.inputs[0], unstackSources(sources, cks[0]), {
      metadata,
      inputs: req.inputs,
      alsoReads: otherReads(req, req.inputs[0]),
      signal: ctx.signal,
      onShard: (i, n) => ctx.onProgress({ stage: 'writing', message: `Writing the merged model: shard ${i + 1} of ${n}`, fraction: i / n }),
    });
    return {
      out: req.out,
      inputs: [...req.inputs],
      lambda,
      aligned: req.align,
      method,
      seconds: (performance.now() - started) / 1000,
      backend: currentBackend(),
      ...(widened.length ? { widened: widened.map((w) => ({ tensor: w.name, from: w.from, to: w.to })) } : {}),
      ...(repair ? { repair } : {}),
    };
  } finally {
    await closeAll(cks);
  }
}
