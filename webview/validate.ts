/**
 * Hand-written guards for messages arriving in a webview. Each returns the message (with numeric
 * arrays normalised to Float32Array) or throws a `MessageError` whose one-line message names the
 * field that broke the rule; the views log it and keep running.
 */
import type {
  AlignmentState,
  ArchitectureInfo,
  AttentionLayer,
  BarriersState,
  HeatmapData,
  InspectorState,
  InspectorTensor,
  ModelRef,
  RunSummary,
  ToAlignment,
  ToBarriers,
  ToInspector,
} from './protocol';
import type { BarrierCurve, GroupSummary, PathMetrics, TensorStatsResult } from '../src/engine/protocol';
import { typedArrayReviver } from './reportData';

export class MessageError extends Error {
  readonly kind = 'InvalidMessage';
  constructor(message: string) {
    super(message);
    this.name = 'MessageError';
  }
}

type Obj = Record<string, unknown>;

function fail(path: string, rule: string): never {
  throw new MessageError(`message: \`${path}\` ${rule}`);
}

function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object');
  return v as Obj;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'must be a string');
  return v;
}

function optStr(v: unknown, path: string): string | undefined {
  return v === undefined ? undefined : str(v, path);
}

/** A number; NaN/Infinity allowed (losses can diverge) but must be of type number. */
function num(v: unknown, path: string): number {
  if (typeof v !== 'number') fail(path, 'must be a number');
  return v;
}

function int(v: unknown, path: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(path, `must be an integer ≥ ${min}`);
  return v;
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  return v;
}

function numArray(v: unknown, path: string): number[] {
  return arr(v, path).map((x, i) => num(x, `${path}[${i}]`));
}

/** Float32Array, any other typed array, ArrayBuffer or number[] → Float32Array of `length`. */
function floats(v: unknown, path: string, length: number): Float32Array {
  let out: Float32Array;
  if (v instanceof Float32Array) out = v;
  else if (v instanceof ArrayBuffer) out = new Float32Array(v);
  else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) out = Float32Array.from(v as unknown as ArrayLike<number>);
  else if (Array.isArray(v)) out = Float32Array.from(numArray(v, path));
  else if (typeof v === 'object' && v !== null && typeof (v as Obj).$f32 === 'string') {
    // The report's base64 form ({$f32}), also accepted from the host.
    const r = typedArrayReviver('', v);
    if (!(r instanceof Float32Array)) fail(path, 'has a malformed $f32 payload');
    out = r;
  } else fail(path, 'must be a Float32Array, an array of numbers or {$f32: base64}');
  if (out.length !== length) fail(path, `has ${out.length} values, expected ${length}`);
  return out;
}

function modelRef(v: unknown, path: string): ModelRef {
  const o = obj(v, path);
  return { name: str(o.name, `${path}.name`), path: str(o.path, `${path}.path`) };
}

function group(v: unknown, path: string): GroupSummary {
  const o = obj(v, path);
  return {
    name: str(o.name, `${path}.name`),
    size: int(o.size, `${path}.size`),
    moved: int(o.moved, `${path}.moved`),
    objectiveBefore: num(o.objectiveBefore, `${path}.objectiveBefore`),
    objectiveAfter: num(o.objectiveAfter, `${path}.objectiveAfter`),
  };
}

function heatmap(v: unknown, path: string): HeatmapData {
  const o = obj(v, path);
  const size = int(o.size, `${path}.size`, 1);
  const originalSize = o.originalSize === undefined ? size : int(o.originalSize, `${path}.originalSize`, 1);
  if (originalSize < size) fail(`${path}.originalSize`, 'must be ≥ size');
  const perm = arr(o.perm, `${path}.perm`).map((x, i) => int(x, `${path}.perm[${i}]`));
  if (perm.length !== originalSize) fail(`${path}.perm`, `has ${perm.length} entries, expected ${originalSize}`);
  const seen = new Uint8Array(originalSize);
  for (let i = 0; i < perm.length; i++) {
    if (perm[i] >= originalSize || seen[perm[i]]) fail(`${path}.perm`, 'is not a permutation');
    seen[perm[i]] = 1;
  }
  return {
    name: str(o.name, `${path}.name`),
    size,
    originalSize,
    perm,
    before: floats(o.before, `${path}.before`, size * size),
    after: floats(o.after, `${path}.after`, size * size),
  };
}

function metrics(v: unknown, path: string, n: number): PathMetrics {
  const o = obj(v, path);
  const loss = numArray(o.loss, `${path}.loss`);
  const acc = numArray(o.acc, `${path}.acc`);
  if (loss.length !== n) fail(`${path}.loss`, `has ${loss.length} values, expected ${n}`);
  if (acc.length !== n && acc.length !== 0) fail(`${path}.acc`, `has ${acc.length} values, expected ${n}`);
  // Language models: exp(loss) per lambda.
  if (o.perplexity === undefined) return { loss, acc };
  const perplexity = numArray(o.perplexity, `${path}.perplexity`);
  if (perplexity.length !== n) fail(`${path}.perplexity`, `has ${perplexity.length} values, expected ${n}`);
  return { loss, acc, perplexity };
}

export function barrierCurve(v: unknown, path: string): BarrierCurve {
  const o = obj(v, path);
  const lambdas = numArray(o.lambdas, `${path}.lambdas`);
  const b = obj(o.barrier, `${path}.barrier`);
  return {
    lambdas,
    naive: metrics(o.naive, `${path}.naive`, lambdas.length),
    aligned: o.aligned === undefined ? undefined : metrics(o.aligned, `${path}.aligned`, lambdas.length),
    barrier: {
      naive: num(b.naive, `${path}.barrier.naive`),
      aligned: b.aligned === undefined ? undefined : num(b.aligned, `${path}.barrier.aligned`),
    },
  };
}

export function attentionLayer(v: unknown, path: string): AttentionLayer {
  const o = obj(v, path);
  const kvGroups = o.kvGroups === undefined ? undefined : int(o.kvGroups, `${path}.kvGroups`, 1);
  const groupHeads = optStr(o.groupHeads, `${path}.groupHeads`);
  if (typeof o.fixedDims !== 'boolean') fail(`${path}.fixedDims`, 'must be a boolean');
  return {
    layer: str(o.layer, `${path}.layer`),
    label: str(o.label, `${path}.label`),
    heads: int(o.heads, `${path}.heads`, 1),
    ...(kvGroups !== undefined ? { kvGroups } : {}),
    headDim: int(o.headDim, `${path}.headDim`, 1),
    outer: str(o.outer, `${path}.outer`),
    ...(groupHeads !== undefined ? { groupHeads } : {}),
    inner: arr(o.inner, `${path}.inner`).map((x, i) => {
      const q = obj(x, `${path}.inner[${i}]`);
      return { perm: str(q.perm, `${path}.inner[${i}].perm`), label: str(q.label, `${path}.inner[${i}].label`) };
    }),
    fixedDims: o.fixedDims,
    shape: str(o.shape, `${path}.shape`),
    details: arr(o.details, `${path}.details`).map((x, i) => str(x, `${path}.details[${i}]`)),
    summary: str(o.summary, `${path}.summary`),
  };
}

function attentionLayers(v: unknown, path: string): AttentionLayer[] | undefined {
  return v === undefined ? undefined : arr(v, path).map((x, i) => attentionLayer(x, `${path}[${i}]`));
}

export function alignmentState(v: unknown, path = 'state'): AlignmentState {
  const o = obj(v, path);
  const d = o.distance === undefined ? undefined : obj(o.distance, `${path}.distance`);
  return {
    title: str(o.title, `${path}.title`),
    a: modelRef(o.a, `${path}.a`),
    b: modelRef(o.b, `${path}.b`),
    out: o.out === undefined ? undefined : modelRef(o.out, `${path}.out`),
    method: str(o.method, `${path}.method`),
    backend: str(o.backend, `${path}.backend`),
    seconds: num(o.seconds, `${path}.seconds`),
    iterations: num(o.iterations, `${path}.iterations`),
    objectiveBefore: num(o.objectiveBefore, `${path}.objectiveBefore`),
    objectiveAfter: num(o.objectiveAfter, `${path}.objectiveAfter`),
    groups: arr(o.groups, `${path}.groups`).map((g, i) => group(g, `${path}.groups[${i}]`)),
    heatmaps: arr(o.heatmaps, `${path}.heatmaps`).map((g, i) => heatmap(g, `${path}.heatmaps[${i}]`)),
    curve: o.curve === undefined ? undefined : barrierCurve(o.curve, `${path}.curve`),
    curveNote: optStr(o.curveNote, `${path}.curveNote`),
    distance: d && { naive: num(d.naive, `${path}.distance.naive`), aligned: num(d.aligned, `${path}.distance.aligned`) },
    attention: attentionLayers(o.attention, `${path}.attention`),
  };
}

export function toAlignment(v: unknown): ToAlignment {
  const o = obj(v, 'message');
  if (o.type === 'init' || o.type === 'update') return { type: o.type, state: alignmentState(o.state) };
  if (o.type === 'curve') {
    return {
      type: 'curve',
      curve: o.curve === undefined ? undefined : barrierCurve(o.curve, 'message.curve'),
      curveNote: optStr(o.curveNote, 'message.curveNote'),
    };
  }
  fail('message.type', `"${String(o.type)}" is not a message of the alignment view`);
}

function run(v: unknown, path: string): RunSummary {
  const o = obj(v, path);
  const kind = o.kind;
  if (kind !== 'align' && kind !== 'merge' && kind !== 'barrier') fail(`${path}.kind`, 'must be align, merge or barrier');
  const b = o.barrier === undefined ? undefined : obj(o.barrier, `${path}.barrier`);
  return {
    id: str(o.id, `${path}.id`),
    kind,
    a: str(o.a, `${path}.a`),
    b: str(o.b, `${path}.b`),
    others: o.others === undefined ? undefined : arr(o.others, `${path}.others`).map((x, i) => str(x, `${path}.others[${i}]`)),
    method: str(o.method, `${path}.method`),
    createdAt: str(o.createdAt, `${path}.createdAt`),
    backend: str(o.backend, `${path}.backend`),
    seconds: num(o.seconds, `${path}.seconds`),
    barrier: b && {
      naive: num(b.naive, `${path}.barrier.naive`),
      aligned: b.aligned === undefined ? undefined : num(b.aligned, `${path}.barrier.aligned`),
    },
    curve: o.curve === undefined ? undefined : barrierCurve(o.curve, `${path}.curve`),
    out: optStr(o.out, `${path}.out`),
    note: optStr(o.note, `${path}.note`),
    folder: optStr(o.folder, `${path}.folder`),
    seed: o.seed === undefined ? undefined : num(o.seed, `${path}.seed`),
  };
}

export function barriersState(v: unknown, path = 'state'): BarriersState {
  const o = obj(v, path);
  return { runs: arr(o.runs, `${path}.runs`).map((r, i) => run(r, `${path}.runs[${i}]`)) };
}

export function toBarriers(v: unknown): ToBarriers {
  const o = obj(v, 'message');
  if (o.type === 'init' || o.type === 'update') return { type: o.type, state: barriersState(o.state) };
  fail('message.type', `"${String(o.type)}" is not a message of the barrier view`);
}

function tensor(v: unknown, path: string): InspectorTensor {
  const o = obj(v, path);
  const shape = arr(o.shape, `${path}.shape`).map((x, i) => int(x, `${path}.shape[${i}]`));
  let offsets: [number, number] | undefined;
  if (o.offsets !== undefined) {
    const a = arr(o.offsets, `${path}.offsets`);
    if (a.length !== 2) fail(`${path}.offsets`, 'must be [begin, end]');
    offsets = [int(a[0], `${path}.offsets[0]`), int(a[1], `${path}.offsets[1]`)];
  }
  return { name: str(o.name, `${path}.name`), dtype: str(o.dtype, `${path}.dtype`), shape, offsets };
}

function architecture(v: unknown, path: string): ArchitectureInfo {
  const o = obj(v, path);
  const p = obj(o.perms, `${path}.perms`);
  const perms: Record<string, number> = {};
  for (const [k, n] of Object.entries(p)) perms[k] = int(n, `${path}.perms.${k}`);
  return {
    family: str(o.family, `${path}.family`),
    perms,
    symmetryLog10: num(o.symmetryLog10, `${path}.symmetryLog10`),
    notes: o.notes === undefined ? undefined : arr(o.notes, `${path}.notes`).map((x, i) => str(x, `${path}.notes[${i}]`)),
    blocks: o.blocks === undefined ? undefined : Object.fromEntries(Object.entries(obj(o.blocks, `${path}.blocks`)).map(([k, n]) => [k, int(n, `${path}.blocks.${k}`, 1)])),
    attention: attentionLayers(o.attention, `${path}.attention`),
  };
}

export function inspectorState(v: unknown, path = 'state'): InspectorState {
  const o = obj(v, path);
  const m = obj(o.metadata ?? {}, `${path}.metadata`);
  // No prototype: a `__proto__` key from a file is a key like any other (assignment would drop it).
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, x] of Object.entries(m)) metadata[k] = str(x, `${path}.metadata.${k}`);
  return {
    path: str(o.path, `${path}.path`),
    format: str(o.format, `${path}.format`),
    metadata,
    tensors: arr(o.tensors, `${path}.tensors`).map((t, i) => tensor(t, `${path}.tensors[${i}]`)),
    totalParams: num(o.totalParams, `${path}.totalParams`),
    totalBytes: num(o.totalBytes, `${path}.totalBytes`),
    architecture: o.architecture === undefined ? undefined : architecture(o.architecture, `${path}.architecture`),
    error: optStr(o.error, `${path}.error`),
  };
}

function stats(v: unknown, path: string): TensorStatsResult {
  const o = obj(v, path);
  const hist = obj(o.histogram, `${path}.histogram`);
  const edges = numArray(hist.edges, `${path}.histogram.edges`);
  const counts = numArray(hist.counts, `${path}.histogram.counts`);
  if (counts.length > 0 && edges.length !== counts.length + 1) fail(`${path}.histogram.edges`, 'must have one more entry than counts');
  return {
    tensor: str(o.tensor, `${path}.tensor`),
    count: num(o.count, `${path}.count`),
    min: num(o.min, `${path}.min`),
    max: num(o.max, `${path}.max`),
    mean: num(o.mean, `${path}.mean`),
    std: num(o.std, `${path}.std`),
    nanCount: num(o.nanCount, `${path}.nanCount`),
    infCount: num(o.infCount, `${path}.infCount`),
    histogram: { edges, counts },
  };
}

export function toInspector(v: unknown): ToInspector {
  const o = obj(v, 'message');
  switch (o.type) {
    case 'init':
      return { type: 'init', state: inspectorState(o.state) };
    case 'stats':
      return { type: 'stats', tensor: str(o.tensor, 'message.tensor'), stats: stats(o.stats, 'message.stats') };
    case 'statsError':
      return { type: 'statsError', tensor: str(o.tensor, 'message.tensor'), message: str(o.message, 'message.message') };
    case 'statsProgress': {
      const fraction = num(o.fraction, 'message.fraction');
      if (!(fraction >= 0 && fraction <= 1)) fail('message.fraction', 'must be between 0 and 1');
      return { type: 'statsProgress', tensor: str(o.tensor, 'message.tensor'), fraction, message: optStr(o.message, 'message.message') };
    }
    case 'statsCancelled':
      return { type: 'statsCancelled', tensor: str(o.tensor, 'message.tensor') };
    default:
      fail('message.type', `"${String(o.type)}" is not a message of the inspector view`);
  }
}
