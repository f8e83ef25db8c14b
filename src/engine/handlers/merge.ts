/**
 * `merge` request. Two inputs: align B to A by weight matching (unless `align` is false), then
 * write (1−λ)·A + λ·π(B) for every floating-point tensor. Three or more: MergeMany (Git Re-Basin
 * Algorithm 3) aligns every model to the consensus, then the uniform mean is written. Non-float
 * tensors (integer counters, masks) are copied from the reference, inputs[0].
 */
import type { Checkpoint, DenseTensor, PermSpec, Permutations, TensorInfo } from '../../core/checkpoint';
import { interpolate, mergeMany } from '../../core/matching/merge';
import { permuteTensor } from '../../core/matching/permute';
import { ENCODABLE_DTYPES, encodeFromFloat32, provenanceMetadata, writeSafetensors, type TensorSource } from '../../core/safetensors';
import { currentBackend } from '../backend';
import type { HandlerContext } from '../dispatch';
import { throwIfCancelled } from '../errors';
import { assertCompatible, axisPermutations, base, closeAll, isFloatDtype, loadTensors, openAll, readChecked, specFor } from '../loadTensors';
import type { MergeRequest, MergeResult } from '../protocol';
import { tfMatMul } from '../tfMatMul';
import { TOOL, VERSION } from '../version';
import { assertOutNotInput, checkMatchingMemory, matchWeights, memoryBudgetOf } from '../methods/common';

/** A merged float tensor is written in the reference's dtype when we can encode it, else as F32. */
function outputDtype(info: TensorInfo): string {
  return ENCODABLE_DTYPES.includes(info.dtype) ? info.dtype : 'F32';
}

function mergedSource(info: TensorInfo, compute: () => Promise<Float32Array>): TensorSource {
  const dtype = outputDtype(info);
  return { name: info.name, dtype, shape: info.shape, read: async () => encodeFromFloat32(dtype, await compute()) };
}

function rawSource(ck: Checkpoint, info: TensorInfo): TensorSource {
  return { name: info.name, dtype: info.dtype, shape: info.shape, byteLength: info.byteLength, read: () => ck.readRaw(info.name) };
}

/** Reports which float dtypes cannot be written back and become F32. */
function logWidened(ref: Checkpoint, ctx: HandlerContext): void {
  const widened = ref.tensors.filter((t) => isFloatDtype(t.dtype) && outputDtype(t) !== t.dtype);
  if (widened.length) ctx.log(`merge: ${widened.length} tensor(s) of dtype ${widened[0].dtype} are written as F32 (first: \`${widened[0].name}\`)`);
}

async function mergeTwo(req: MergeRequest, a: Checkpoint, b: Checkpoint, ctx: HandlerContext): Promise<{ sources: TensorSource[]; method: MergeResult['method'] }> {
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
  let spec: PermSpec = { perms: {}, axes: {} };
  let perms: Permutations = {};
  let loadedA = new Map<string, DenseTensor>();
  let loadedB = new Map<string, DenseTensor>();
  if (req.align) {
    spec = (await specFor(req.spec, a, [b])).spec;
    const names = Object.keys(spec.axes);
    const zeroed = new Set<string>();
    checkMatchingMemory(spec, a, b, memoryBudgetOf(req));
    loadedA = await loadTensors(a, names, { ...opts, zeroNonFinite: zeroed });
    loadedB = await loadTensors(b, names, { ...opts, zeroNonFinite: zeroed });
    perms = (await matchWeights(spec, loadedA, loadedB, req.seed, req.maxIter, ctx, memoryBudgetOf(req))).perms;
    // Tensors zeroed for matching are re-read, so their NaN/Inf carry into the merge as they are.
    for (const name of zeroed) {
      loadedA.delete(name);
      loadedB.delete(name);
    }
  } else {
    assertCompatible(a, b);
  }
  const sources = a.tensors.map((info): TensorSource => {
    if (!isFloatDtype(info.dtype)) return rawSource(a, info);
    return mergedSource(info, async () => {
      throwIfCancelled(ctx.signal, 'merge');
      const ta = loadedA.get(info.name) ?? (await readChecked(a, info.name, opts));
      const tb0 = loadedB.get(info.name) ?? (await readChecked(b, info.name, opts));
      const tb = permuteTensor(tb0, axisPermutations(spec, perms, info.name, info.shape.length));
      // Free the loaded copies as soon as each tensor is written.
      loadedA.delete(info.name);
      loadedB.delete(info.name);
      return interpolate(new Map([[info.name, ta]]), new Map([[info.name, tb]]), req.lambda).get(info.name)!.data;
    });
  });
  return { sources, method: req.align ? 'weight' : 'none' };
}

async function mergeSeveral(req: MergeRequest, cks: Checkpoint[], ctx: HandlerContext): Promise<{ sources: TensorSource[]; method: MergeResult['method'] }> {
  const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
  const ref = cks[0];
  if (!req.align) {
    for (const other of cks.slice(1)) assertCompatible(ref, other);
    const sources = ref.tensors.map((info): TensorSource => {
      if (!isFloatDtype(info.dtype)) return rawSource(ref, info);
      return mergedSource(info, async () => {
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
    return mergedSource(info, async () => {
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

export async function mergeHandler(req: MergeRequest, ctx: HandlerContext): Promise<MergeResult> {
  const started = performance.now();
  assertOutNotInput(req.out, req.inputs);
  const cks = await openAll(req.inputs);
  try {
    ctx.onProgress({ stage: 'loading', message: `reading ${req.inputs.length} checkpoints` });
    const { sources, method } = cks.length === 2 ? await mergeTwo(req, cks[0], cks[1], ctx) : await mergeSeveral(req, cks, ctx);
    throwIfCancelled(ctx.signal, 'merge');
    logWidened(cks[0], ctx);
    ctx.onProgress({ stage: 'writing', message: `writing ${base(req.out)}` });
    const lambda = cks.length === 2 ? req.lambda : 1 / cks.length;
    const metadata = provenanceMetadata(cks[0].metadata, {
      tool: TOOL,
      version: VERSION,
      method: method === 'none' ? 'merge' : `merge-${method}`,
      reference: req.inputs[0],
      seed: req.seed,
      lambda,
      inputs: req.inputs.join(','),
    });
    await writeSafetensors(req.out, sources, { metadata, inputs: req.inputs, signal: ctx.signal });
    return {
      out: req.out,
      inputs: req.inputs,
      lambda,
      aligned: req.align,
      method,
      seconds: (performance.now() - started) / 1000,
      backend: currentBackend(),
    };
  } finally {
    await closeAll(cks);
  }
}
