/**
 * Weight matching under the generalized (orthogonal) symmetry of a folded GPT-2 or Llama-family
 * transformer (transformerGroup.ts): Algorithm 1 of Git Re-Basin with the group's maps in place
 * of permutations. The objective is sum over every tensor the group acts on of <A'_t, (g . B')_t>
 * (A', B' with folded norms), raised by coordinate descent: each step solves one map with the
 * others held, and sweeps repeat until one gains nothing.
 * - residual stream: Procrustes of M = sum_t X_B,t^T X_A,t over every tensor touching the stream
 *   (embeddings, untied head, biases written into the stream, readers' input and writers' output
 *   features, with their other axis under the current head and unit maps); the SVD replaces the
 *   assignment. LayerNorm: fixing the all-ones direction (procrustesFixing).
 * - a layer's heads: B's heads matched to A's, then per key/value head the query/key map
 *   (rotary-safe under RoPE) and the value/output map by Procrustes of their weights'
 *   cross-correlations under the current residual map (mapFitting.ts: q, k, v columns with their
 *   biases, o rows); adopted only when the layer's part of the objective grows (the head pairing
 *   within a key/value group is a heuristic under grouped-query attention).
 * - a layer's MLP units: the assignment of their weights' similarity, as permutation weight
 *   matching does. A mixture of experts (Mixtral): experts as wholes, each pair valued by the best
 *   assignment of their units plus their router rows' similarity, then units within the matched
 *   experts (unitAssignment.ts); the router's rows follow the experts.
 * The residual step covers every tensor that writes or reads the stream, the router and ViT's
 * input writers (the patch convolution, seen as [output channels, the rest] as the group action
 * sees it) included.
 * Each step's part of the objective is every term its map touches, so the objective after each
 * step is the one before plus what the step gained: it never decreases.
 *
 * Every tensor is held "other-first": [features on its other axis, hidden] (rows are B's samples
 * of the stream), so the products are C = X Y^T of the engine's `MatMulABt` (float32 products,
 * float64 sums).
 */
import type { DenseTensor, MatMulABt, Progress, TensorMap } from '../checkpoint';
import { procrustes, procrustesFixing, transpose } from '../linalg';
import { cancelled } from '../matching/errors';
import { matchingFraction } from '../matching/weightMatching';
import { mapSummary, matchHeads, pairedSums, procrustesObjective, rotaryProcrustes, type HeadCross, type HeadShape, type OrthogonalMapSummary } from './mapFitting';
import { applyTransformerGroup, type TransformerGroupElement } from './transformerGroup';
import { expertOrder, unitAssignment } from './unitAssignment';
import { featureAxis, SymmetryUnsupported, type LinearLayer, type TransformerLayout } from './transformerLayout';

export interface OrthogonalWeightMatchingOptions {
  /** Sweeps at most. */
  readonly maxIter: number;
  readonly matmul: MatMulABt;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Where the descent starts (default the identity); `objectives[0]` is then the objective there. */
  readonly init?: Required<TransformerGroupElement>;
}

export interface OrthogonalWeightMatchingResult {
  /** The element g with g . B' ~ A' (B' folded). */
  readonly element: Required<TransformerGroupElement>;
  /** The maps of the last sweep, against the cross-correlations they were fitted to. */
  readonly residual: OrthogonalMapSummary;
  readonly qk: OrthogonalMapSummary[][];
  readonly vo: OrthogonalMapSummary[][];
  /** The objective at the start (the identity, or `init`), then after each sweep (never decreasing). */
  readonly objectives: number[];
}

/** A sweep gaining less than this fraction of the objective ends the descent. */
const RELATIVE_GAIN = 1e-9;

/** A tensor in other-first form [rows, hidden], and its bias along the other axis. */
interface Rows {
  readonly data: Float32Array;
  readonly rows: number;
  readonly bias?: Float32Array;
}

/** One block's tensors, other-first; heads' rows in head order, MLP units' in unit order. */
interface BlockRows {
  readonly q: Rows;
  readonly k: Rows;
  readonly v: Rows;
  readonly o: Rows;
  readonly mlp: readonly Rows[];
  /** A mixture's router: one row per expert. */
  readonly router?: Rows;
}

/** A' and B' held other-first for the descent. */
export interface OrthogonalWeightProblem {
  readonly layout: TransformerLayout;
  readonly shape: HeadShape;
  /** sum X_B^T X_A of the tensors only the residual map touches. */
  readonly constant: Float64Array;
  readonly a: readonly BlockRows[];
  readonly b: readonly BlockRows[];
}

interface State {
  residual: Float64Array;
  heads: number[][];
  qk: Float64Array[][];
  vo: Float64Array[][];
  mlp: number[][];
}

export async function orthogonalWeightMatching(layout: TransformerLayout, a: TensorMap, b: TensorMap, opts: OrthogonalWeightMatchingOptions): Promise<OrthogonalWeightMatchingResult> {
  const problem = await prepareOrthogonalWeightMatching(layout, a, b, opts.matmul);
  const { hidden: d, headDim: hd, kvHeads } = layout;
  const layers = layout.blocks.length;
  const identity = (n: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  const init = opts.init;
  const state: State = init
    ? { residual: init.residual, heads: init.heads.map((x) => [...x]), qk: init.qk.map((x) => [...x]), vo: init.vo.map((x) => [...x]), mlp: init.mlp.map((x) => [...x]) }
    : {
      residual: identity(d),
      heads: layout.blocks.map(() => Array.from({ length: layout.heads }, (_, h) => h)),
      qk: layout.blocks.map(() => Array.from({ length: kvHeads }, () => identity(hd))),
      vo: layout.blocks.map(() => Array.from({ length: kvHeads }, () => identity(hd))),
      mlp: layout.blocks.map((blk) => Array.from({ length: blk.mlpWidth }, (_, i) => i)),
    };
  let total = identityObjective(layout, a, init ? applyTransformerGroup(b, layout, init) : b);
  const objectives = [total];
  let residualSummary: OrthogonalMapSummary | undefined;
  const qkSummary: OrthogonalMapSummary[][] = [];
  const voSummary: OrthogonalMapSummary[][] = [];
  const steps = 1 + 2 * layers;
  for (let sweep = 0; sweep < opts.maxIter; sweep++) {
    let step = 0;
    const progress = async (what: string) => {
      if (opts.signal?.aborted) throw cancelled();
      opts.onProgress?.({ stage: 'weight-matching', iteration: sweep + 1, fraction: matchingFraction(sweep, step++ / steps, opts.maxIter), message: `Weight matching (orthogonal): sweep ${sweep + 1}, ${what}` });
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    const before = total;
    await progress('residual stream');
    const m = await residualCross(problem, state, opts.matmul);
    const r = layout.centered ? procrustesFixing(m, d, new Float64Array(d).fill(1 / Math.sqrt(d))) : procrustes(m, d);
    const [oldValue, newValue] = [procrustesObjective(state.residual, m), procrustesObjective(r, m)];
    if (newValue > oldValue) {
      state.residual = r;
      total += newValue - oldValue;
    }
    residualSummary = mapSummary(state.residual, m, d);
    for (let l = 0; l < layers; l++) {
      await progress(`heads of layer ${l + 1} of ${layers}`);
      const fitted = await headStep(problem, state, l, opts.matmul);
      total += fitted.gain;
      qkSummary[l] = fitted.qk;
      voSummary[l] = fitted.vo;
    }
    for (let l = 0; l < layers; l++) {
      await progress(`MLP units of layer ${l + 1} of ${layers}`);
      total += await mlpStep(problem, state, l, opts.matmul);
    }
    objectives.push(total);
    if (!(total - before > RELATIVE_GAIN * Math.abs(total))) break;
  }
  opts.onProgress?.({ stage: 'weight-matching', iteration: objectives.length - 1, fraction: 1, message: `Weight matching (orthogonal): done after ${objectives.length - 1} sweeps` });
  return {
    element: { residual: state.residual, heads: state.heads, qk: state.qk, vo: state.vo, mlp: state.mlp },
    residual: residualSummary!,
    qk: qkSummary,
    vo: voSummary,
    objectives,
  };
}

/** The residual step's M = sum_t X_B,t^T X_A,t, B's tensors under the current head and unit maps (exported for the reference test). */
export async function residualCross(problem: OrthogonalWeightProblem, state: Pick<State, 'heads' | 'qk' | 'vo' | 'mlp'>, matmul: MatMulABt): Promise<Float64Array> {
  const { layout, shape } = problem;
  const m = Float64Array.from(problem.constant);
  for (let l = 0; l < layout.blocks.length; l++) {
    const [ta, tb] = [problem.a[l], problem.b[l]];
    const kvPerm = groupPermutation(state.heads[l], shape);
    const perHead = (maps: readonly Float64Array[], group: (h: number) => number) => (h: number) => maps[group(h)];
    const query = (h: number) => Math.floor(h / shape.perGroup);
    const kv = (j: number) => j;
    const pairs: [Rows, Float32Array][] = [
      [ta.q, transformRows(tb.q.data, state.heads[l], perHead(state.qk[l], query), shape.hd, layout.hidden)],
      [ta.k, transformRows(tb.k.data, kvPerm, perHead(state.qk[l], kv), shape.hd, layout.hidden)],
      [ta.v, transformRows(tb.v.data, kvPerm, perHead(state.vo[l], kv), shape.hd, layout.hidden)],
      [ta.o, transformRows(tb.o.data, state.heads[l], perHead(state.vo[l], query), shape.hd, layout.hidden)],
      ...ta.mlp.map((x, i): [Rows, Float32Array] => [x, transformRows(tb.mlp[i].data, state.mlp[l], undefined, 1, layout.hidden)]),
    ];
    const experts = layout.blocks[l].experts;
    if (ta.router && tb.router && experts) pairs.push([ta.router, transformRows(tb.router.data, expertOrder(state.mlp[l], experts.count), undefined, 1, layout.hidden)]);
    for (const [x, y] of pairs) addInto(m, await crossOverRows(y, x.data, x.rows, layout.hidden, matmul));
  }
  return m;
}

/** Heads, then per key/value head the QK and VO maps, of layer l under the current residual map; returns the objective gained. */
async function headStep(problem: OrthogonalWeightProblem, state: State, l: number, matmul: MatMulABt): Promise<{ gain: number; qk: OrthogonalMapSummary[]; vo: OrthogonalMapSummary[] }> {
  const { layout, shape } = problem;
  const [ta, tb] = [problem.a[l], problem.b[l]];
  const rt = transpose(state.residual, layout.hidden, layout.hidden);
  const cross = async (x: Rows, y: Rows) => crossWithBias(x, await rotated(y, rt, layout.hidden, matmul), layout.hidden, matmul);
  const c: HeadCross = { q: await cross(ta.q, tb.q), k: await cross(ta.k, tb.k), v: await cross(ta.v, tb.v), o: await cross(ta.o, tb.o) };
  const qkFit = (m: Float64Array) => (layout.rotary ? rotaryProcrustes(m, shape.hd) : procrustes(m, shape.hd));
  const current = pairedSums(c, shape, state.heads[l]);
  const value = (qk: readonly Float64Array[], vo: readonly Float64Array[], sums: { qk: Float64Array[]; vo: Float64Array[] }) =>
    qk.reduce((acc, x, j) => acc + procrustesObjective(x, sums.qk[j]) + procrustesObjective(vo[j], sums.vo[j]), 0);
  const oldValue = value(state.qk[l], state.vo[l], current);
  const matched = matchHeads(c, shape, qkFit);
  const qk = matched.qk.map(qkFit);
  const vo = matched.vo.map((x) => procrustes(x, shape.hd));
  const newValue = value(qk, vo, matched);
  let gain = 0;
  let sums = current;
  if (newValue > oldValue) {
    state.heads[l] = matched.heads;
    state.qk[l] = qk;
    state.vo[l] = vo;
    sums = matched;
    gain = newValue - oldValue;
  }
  return {
    gain,
    qk: state.qk[l].map((x, j) => mapSummary(x, sums.qk[j], shape.hd, matched.qkSame[j])),
    vo: state.vo[l].map((x, j) => mapSummary(x, sums.vo[j], shape.hd, matched.voSame[j])),
  };
}

/**
 * MLP units of layer l: the assignment of C[i, j] = <A's unit i, B's unit j> under the current
 * residual map (a mixture: experts as wholes, their router rows' similarity added); returns the
 * objective gained.
 */
async function mlpStep(problem: OrthogonalWeightProblem, state: State, l: number, matmul: MatMulABt): Promise<number> {
  const { layout } = problem;
  const d = layout.hidden;
  const n = layout.blocks[l].mlpWidth;
  const experts = layout.blocks[l].experts?.count ?? 1;
  const rt = transpose(state.residual, d, d);
  // crossWithBias puts B on the rows; the assignments want A's on the rows.
  const crossAB = async (x: Rows, y: Rows) => transpose(await crossWithBias(x, await rotated(y, rt, d, matmul), d, matmul), y.rows, x.rows);
  const c = new Float64Array(n * n);
  for (const [i, x] of problem.a[l].mlp.entries()) addInto(c, await crossAB(x, problem.b[l].mlp[i]));
  const [ra, rb] = [problem.a[l].router, problem.b[l].router];
  const router = ra && rb ? await crossAB(ra, rb) : undefined;
  const solved = unitAssignment(c, n, experts, router);
  let oldValue = 0;
  state.mlp[l].forEach((j, i) => (oldValue += c[i * n + j]));
  if (router) expertOrder(state.mlp[l], experts).forEach((eb, ea) => (oldValue += router[ea * experts + eb]));
  if (!(solved.value > oldValue)) return 0;
  state.mlp[l] = solved.perm;
  return solved.value - oldValue;
}

/** The other-first rows of B's tensor rotated by the residual map: X_B R (`rt` = R^T). */
async function rotated(y: Rows, rt: Float64Array, d: number, matmul: MatMulABt): Promise<Rows> {
  return { data: await matmul.abT(y.data, Float32Array.from(rt), y.rows, d, d), rows: y.rows, bias: y.bias };
}

/** Y X^T plus B's bias times A's (B's features on the rows), for other-first x (A) and y (B). */
async function crossWithBias(x: Rows, y: Rows, d: number, matmul: MatMulABt): Promise<Float64Array> {
  const out = Float64Array.from(await matmul.abT(y.data, x.data, y.rows, d, x.rows));
  if (y.bias && x.bias) {
    for (let i = 0; i < y.rows; i++) for (let j = 0; j < x.rows; j++) out[i * x.rows + j] += y.bias[i] * x.bias[j];
  }
  return out;
}

/** Y^T X (hidden x hidden) for other-first y (B) and x (A) of `rows` rows. */
async function crossOverRows(y: Float32Array, x: Float32Array, rows: number, d: number, matmul: MatMulABt): Promise<Float64Array> {
  return Float64Array.from(await matmul.abT(transpose32(y, rows, d), transpose32(x, rows, d), d, rows, d));
}

/**
 * The rows of an other-first tensor under a permutation of blocks of `size` rows (new block h is
 * old block perm[h]) and then a map per block (S -> S Q on the columns of the stream-first form,
 * so rows -> Q^T rows).
 */
function transformRows(data: Float32Array, perm: readonly number[], map: ((block: number) => Float64Array) | undefined, size: number, d: number): Float32Array {
  const out = new Float32Array(data.length);
  const acc = new Float64Array(d);
  for (let h = 0; h < perm.length; h++) {
    const src = perm[h] * size * d;
    const q = map?.(h);
    for (let e = 0; e < size; e++) {
      const dst = (h * size + e) * d;
      if (!q) {
        out.set(data.subarray(src + e * d, src + e * d + d), dst);
        continue;
      }
      acc.fill(0);
      for (let k = 0; k < size; k++) {
        const w = q[k * size + e];
        if (w === 0) continue;
        const row = src + k * d;
        for (let c = 0; c < d; c++) acc[c] += w * data[row + c];
      }
      for (let c = 0; c < d; c++) out[dst + c] = acc[c];
    }
  }
  return out;
}

/** The key/value head permutation of a (group-preserving) query head permutation. */
function groupPermutation(heads: readonly number[], shape: HeadShape): number[] {
  return Array.from({ length: shape.kvHeads }, (_, j) => Math.floor(heads[j * shape.perGroup] / shape.perGroup));
}

export async function prepareOrthogonalWeightMatching(layout: TransformerLayout, a: TensorMap, b: TensorMap, matmul: MatMulABt): Promise<OrthogonalWeightProblem> {
  const { hidden: d, headDim: hd, heads, kvHeads } = layout;
  const shape: HeadShape = { heads, kvHeads, hd, perGroup: heads / kvHeads };
  for (const name of blockTensors(layout)) {
    const [x, y] = [need(a, name), need(b, name)];
    if (x.shape.join() !== y.shape.join()) throw new SymmetryUnsupported(`\`${name}\` is [${x.shape.join(', ')}] in A and [${y.shape.join(', ')}] in B`);
  }
  const side = (t: TensorMap) => layout.blocks.map((blk): BlockRows => ({
    q: readerRows(t, blk.q.layer, blk.q.offset, heads * hd),
    k: readerRows(t, blk.k.layer, blk.k.offset, kvHeads * hd),
    v: readerRows(t, blk.v.layer, blk.v.offset, kvHeads * hd),
    o: writerRows(t, blk.o),
    mlp: [...blk.mlpIn.map((x) => readerRows(t, x, 0, blk.mlpWidth)), writerRows(t, blk.mlpOut)],
    ...(blk.experts ? { router: readerRows(t, blk.experts.router, 0, blk.experts.count) } : {}),
  }));
  const constant = new Float64Array(d * d);
  for (const [ya, yb] of streamPairs(layout, a, b)) addInto(constant, await crossOverRows(yb.data, ya.data, ya.rows, d, matmul));
  return { layout, shape, constant, a: side(a), b: side(b) };
}

/** The tensors only the residual map touches, as (A's, B's) other-first rows: embeddings, input writers (ViT's patch projection), B's untied head, the stream's biases. */
function streamPairs(layout: TransformerLayout, a: TensorMap, b: TensorMap): [Rows, Rows][] {
  const d = layout.hidden;
  const rows = (t: DenseTensor | undefined, streamAxis: 0 | 1): Rows | undefined => (t ? { data: streamLast(t, streamAxis, d), rows: t.data.length / d } : undefined);
  const out: [Rows, Rows][] = [];
  const add = (nameA: string | undefined, nameB: string | undefined, streamAxis: 0 | 1 = 1) => {
    const [x, y] = [rows(nameA ? a.get(nameA) : undefined, streamAxis), rows(nameB ? b.get(nameB) : undefined, streamAxis)];
    if (x && y && x.rows === y.rows) out.push([x, y]);
  };
  for (const e of layout.embeddings) add(e, e);
  for (const w of layout.inputWriters ?? []) {
    add(w.weight, w.weight, featureAxis(w, 'out'));
    add(w.bias, w.bias);
  }
  // B's head stands beside its embedding only when untied; A's is its own, or its embedding when tied.
  if (b.has(layout.head.weight)) {
    if (featureAxis(layout.head, 'in') !== 1) throw new SymmetryUnsupported(`\`${layout.head.weight}\` stores its hidden features on the rows`);
    add(a.has(layout.head.weight) ? layout.head.weight : layout.tokenEmbedding, layout.head.weight);
  }
  add(layout.finalNorm.bias, layout.finalNorm.bias);
  for (const blk of layout.blocks) for (const n of [blk.attnNorm.bias, blk.mlpNorm.bias, blk.o.bias, blk.mlpOut.bias]) add(n, n);
  return out;
}

/** The sum over the tensors weightMatching touches of <A_t, B_t> (the objective at the identity). */
function identityObjective(layout: TransformerLayout, a: TensorMap, b: TensorMap): number {
  let total = 0;
  for (const [x, y] of streamPairs(layout, a, b)) total += dot(x.data, y.data);
  for (const n of blockTensors(layout)) total += dot(need(a, n).data, need(b, n).data);
  return total;
}

/** The blocks' linear weights and their biases that are not stream vectors (those are in streamPairs). */
function blockTensors(layout: TransformerLayout): Set<string> {
  const names = new Set<string>();
  for (const blk of layout.blocks) {
    for (const l of [blk.q.layer, blk.k.layer, blk.v.layer, blk.o, ...blk.mlpIn, blk.mlpOut, ...(blk.experts ? [blk.experts.router] : [])]) {
      names.add(l.weight);
      if (l.bias && l !== blk.o && l !== blk.mlpOut) names.add(l.bias);
    }
  }
  return names;
}

/** A reader's output features [offset, offset + width) as rows of its input (hidden) features, with their bias. */
function readerRows(t: TensorMap, layer: LinearLayer, offset: number, width: number): Rows {
  const bias = layer.bias ? need(t, layer.bias).data.subarray(offset, offset + width) : undefined;
  return { data: otherFirst(need(t, layer.weight), featureAxis(layer, 'in'), offset, width), rows: width, ...(bias ? { bias } : {}) };
}

/** A writer's input features as rows of its output (hidden) features (its bias is a stream vector: streamPairs). */
function writerRows(t: TensorMap, layer: LinearLayer): Rows {
  const w = need(t, layer.weight);
  const axis = featureAxis(layer, 'out');
  const width = w.shape[1 - axis];
  return { data: otherFirst(w, axis, 0, width), rows: width };
}

/** Rows [offset, offset + width) of the axis other than `streamAxis`, each a hidden-long row. */
function otherFirst(t: DenseTensor, streamAxis: 0 | 1, offset: number, width: number): Float32Array {
  const [rows, cols] = t.shape;
  if (streamAxis === 1) return t.data.subarray(offset * cols, (offset + width) * cols);
  const out = new Float32Array(width * rows);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) out[j * rows + r] = t.data[r * cols + offset + j];
  return out;
}

/**
 * A tensor holding the stream on `streamAxis` as rows of hidden features: along axis 1 its last
 * axis after the rest (embeddings [..., hidden], biases), along axis 0 its first against the rest
 * (a conv's output channels [hidden, ...]: transposed), as the group action (rotateAxis) sees it.
 */
function streamLast(t: DenseTensor, streamAxis: 0 | 1, d: number): Float32Array {
  if (streamAxis === 1 || t.shape.length === 1) return t.data;
  if (t.shape[0] !== d) throw new SymmetryUnsupported(`a stream writer of shape [${t.shape.join(', ')}] does not hold the ${d} stream features on its first axis`);
  return transpose32(t.data, d, t.data.length / d);
}

/** The transpose of a row-major rows x cols float32 matrix. */
function transpose32(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

function need(t: TensorMap, name: string): DenseTensor {
  const x = t.get(name);
  if (!x) throw new SymmetryUnsupported(`tensor \`${name}\` is missing`);
  return x;
}

function dot(x: Float32Array, y: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i] * y[i];
  return acc;
}

function addInto(into: Float64Array, x: ArrayLike<number>): void {
  for (let i = 0; i < x.length; i++) into[i] += x[i];
}
