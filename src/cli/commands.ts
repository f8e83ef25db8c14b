/** One function per `rebasin` command: parse its flags, run it, print text or one JSON object. */
import * as path from 'node:path';
import { checkpointName } from '../core/checkpointName';
import { formatLambda } from '../core/numberText';
import { weightsPath } from '../core/hf/layout';
import { openCheckpoint, checkpointSummary } from '../core/safetensors';
import { stackExperts } from '../core/moe/expertStack';
import { convertToSafetensors } from '../core/formats';
import { SpecError, formatSpecFile, inferSpec, skeletonSpecFile, specToFile, symmetryGroupLog10 } from '../core/permspec';
import { readHfConfig } from '../core/families/hfConfig';
import { DEFAULT_METHOD, MAX_ITER, METHOD_IDS, SEED, methodInfo, optionAccepts, optionRule, type MethodId, type NumberOption } from '../core/methods';
import type { Checkpoint } from '../core/checkpoint';
import { EngineClient } from '../engine/client';
import { defaultMemoryBudget } from '../core/memoryBudget';
import { plannedWorkerCount } from '../engine/pool';
import { lmCheckpointFamily } from '../core/families/lmCheckpoint';
import { MAX_STEPS } from '../core/barrier';
import { DEFAULT_SYMMETRY, SYMMETRY_IDS } from '../core/symmetry/settings';
import type { AlignResult, BackendChoice, BarrierCurve, BarrierResult, DataOptions, DiffResult, EngineRequest, MergeResult, MethodOptionFields, ResultOf, ScanResult } from '../engine/protocol';
import { type ParsedArgs, UsageError, byteSize, expectPositionals, flagText, fraction, int, oneOf, optionalInt, positive } from './args';
import { progressLine } from './progress';
import { formatBytes } from '../../shared/bytes';
import { formatCount, table, writeTable } from './format';
import { displayName, safeText } from '../core/files';
import { removeOwnTemps } from '../core/safetensors/shardedWriter';

export interface Output {
  json(value: unknown): void;
  text(line: string): void;
}

export interface CommandContext {
  readonly args: ParsedArgs;
  readonly out: Output;
  readonly signal: AbortSignal;
}

/** Architecture as `rebasin inspect` reports it; absent when inference cannot place every tensor. */
function architectureOf(ckpt: Checkpoint): { family: string; perms: Record<string, number>; symmetryLog10: number; notes: string[] } | undefined {
  try {
    // Mixture-of-experts layers as the spec sees them (stacked: core/moe/expertStack.ts).
    const inferred = inferSpec(stackExperts(ckpt).tensors, readHfConfig(ckpt.path));
    return { family: inferred.family, perms: { ...inferred.spec.perms }, symmetryLog10: symmetryGroupLog10(inferred.spec), notes: inferred.notes };
  } catch {
    return undefined;
  }
}

export async function inspect({ args, out }: CommandContext): Promise<void> {
  const [file] = expectPositionals(args, 1, 1, 'one FILE (.safetensors, an .index.json, a Hugging Face folder, a PyTorch or Flax checkpoint)');
  const ckpt = await openCheckpoint(weightsPath(file));
  try {
    const summary = checkpointSummary(ckpt);
    const architecture = architectureOf(ckpt);
    const report = architecture ? { ...summary, architecture: { family: architecture.family, perms: architecture.perms } } : summary;
    if (args.values.json) return out.json(report);
    out.text(`${safeText(summary.path, 400)} (${summary.format})`);
    if (summary.origin) out.text(`  weights found at ${summary.origin}`);
    out.text(`  ${formatCount(summary.tensors.length)} tensors, ${formatCount(summary.totalParams)} parameters, ${formatBytes(summary.totalBytes)}`);
    const meta = Object.entries(summary.metadata);
    if (meta.length) out.text(`  metadata: ${meta.map(([k, v]) => `${safeText(k, 60)}=${safeText(v, 200)}`).join(', ')}`);
    if (architecture) {
      out.text(`  architecture: ${architecture.family}, ${Object.keys(architecture.perms).length} permutation groups (|symmetry group| = 10^${architecture.symmetryLog10.toFixed(1)})`);
      for (const note of architecture.notes) out.text(`    note: ${safeText(note, 400)}`);
    } else {
      out.text('  architecture: not recognised (write a spec by hand: see `rebasin spec`)');
    }
    out.text('');
    const rows = summary.tensors;
    writeTable(['tensor', 'dtype', 'shape', 'params'], rows.length, (i) => {
      const t = rows[i];
      return [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatCount(t.shape.reduce((a, b) => a * b, 1))];
    }, (chunk) => out.text(chunk));
  } finally {
    await ckpt.close();
  }
}

export async function spec({ args, out }: CommandContext): Promise<void> {
  const [file] = expectPositionals(args, 1, 1, 'one FILE');
  // Experts stacked as align reads them, so the spec names the tensors align and merge use.
  const ckpt = stackExperts(await openCheckpoint(weightsPath(file)));
  try {
    let inferred;
    try {
      inferred = inferSpec(ckpt.tensors, readHfConfig(ckpt.path));
    } catch (err) {
      // Give the user the all-null skeleton to fill in by hand, then fail with the reason.
      if (!(err instanceof SpecError)) throw err;
      const skeleton = skeletonSpecFile(ckpt.tensors);
      if (args.values.json) out.json({ error: err.message, ...skeleton });
      else out.text(formatSpecFile(skeleton));
      throw new Error(`${displayName(weightsPath(file))}: ${err.message.replace(/^inferred spec: /, '')}`);
    }
    // The spec file carries the axes (sizes come from the tensors when it is read back);
    // family, perms and notes ride along for the reader.
    const specFile = specToFile(inferred.spec, { family: inferred.family, notes: inferred.notes });
    if (args.values.json) return out.json(specFile);
    process.stderr.write(`family: ${inferred.family}; ${Object.keys(inferred.spec.perms).length} permutations. Save this JSON, edit it, pass it with --spec.\n`);
    out.text(formatSpecFile(specFile));
  } finally {
    await ckpt.close();
  }
}

function dataOptions(args: ParsedArgs, required: boolean): DataOptions | undefined {
  const p = args.values.data;
  if (p === undefined) {
    if (required) throw new UsageError(`${args.command} needs --data PATH`);
    return undefined;
  }
  return {
    path: path.resolve(p),
    split: oneOf('split', args.values.split, ['test', 'train', 'both'] as const, 'test'),
    limit: optionalInt('limit', args.values.limit),
    // Token data for Hugging Face language models (docs/transformers.md).
    ...(args.values.tokenizer !== undefined ? { tokenizer: path.resolve(args.values.tokenizer) } : {}),
    ...(args.values['seq-len'] !== undefined ? { seqLen: int('seq-len', args.values['seq-len'], 0, 2) } : {}),
    ...(args.values['mask-seed'] !== undefined ? { maskSeed: int('mask-seed', args.values['mask-seed'], 0) } : {}),
    ...(args.values['mask-id'] !== undefined ? { maskId: int('mask-id', args.values['mask-id'], 0) } : {}),
  };
}

const resolved = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(p));

/** `--steps`: 2 to MAX_STEPS points on the λ grid. */
function stepsOf(args: ParsedArgs): number {
  const steps = int('steps', args.values.steps, 25, 2);
  if (steps > MAX_STEPS) throw new UsageError(`--steps must be at most ${MAX_STEPS} (a λ step of ${1 / (MAX_STEPS - 1)}), got ${steps}`);
  return steps;
}

/** `--workers`, capped by the cores and by the request's memory budget (a warning says so). */
function workersFor(ctx: CommandContext, request: EngineRequest): number {
  const requested = optionalInt('workers', ctx.args.values.workers);
  const budget = ('memoryBudget' in request ? request.memoryBudget : undefined) ?? defaultMemoryBudget();
  const { count, note } = plannedWorkerCount(requested, budget);
  if (note) process.stderr.write(`warning: --workers: ${note}\n`);
  return count;
}

async function runOnEngine<K extends EngineRequest['kind']>(ctx: CommandContext, request: Extract<EngineRequest, { kind: K }>, label: string): Promise<ResultOf[K]> {
  const backend = oneOf('backend', ctx.args.values.backend, ['auto', 'tensorflow', 'wasm', 'cpu'] as const, 'auto') as BackendChoice;
  const workers = workersFor(ctx, request);
  const client = EngineClient.start({ backend, workers, log: ctx.args.values.debug ? (line) => process.stderr.write(`[engine] ${line}\n`) : undefined });
  const bar = progressLine(label);
  // Off a terminal, progress waits a few seconds: a refusal of the inputs (which comes first) is then
  // the only line on stderr, and the error line itself says that the command failed.
  const tty = process.stderr.isTTY === true;
  const quietUntil = Date.now() + 5000;
  let shown = false;
  try {
    const result = await client.request(request, {
      onProgress: (p) => {
        if (!tty && Date.now() < quietUntil) return;
        shown = true;
        bar.update(p);
      },
      signal: ctx.signal,
    });
    bar.done();
    return result as ResultOf[K];
  } catch (err) {
    if (tty || shown) bar.done('failed');
    // A worker stopped mid-write (cancel past its grace time) cannot remove its temporary output.
    const out = 'out' in request ? request.out : undefined;
    if (typeof out === 'string') {
      await client.dispose();
      await removeOwnTemps(out);
    }
    throw err;
  } finally {
    await client.dispose();
  }
}

function requireOut(args: ParsedArgs): string {
  if (!args.values.out) throw new UsageError(`${args.command} needs --out OUT`);
  return path.resolve(args.values.out);
}

/** Warnings about the inputs, one line each on stderr (stdout keeps the report). */
function warn(lines: readonly string[] | undefined): void {
  for (const line of new Set(lines ?? [])) process.stderr.write(`warning: ${safeText(line, 400)}\n`);
}

/** align --symmetry orthogonal: the maps (how far from a permutation), both equivalence checks, both files. */
function printOrthogonal(out: Output, r: Omit<AlignResult, 'matrices'>, o: NonNullable<AlignResult['orthogonal']>): void {
  out.text(`aligned with ${r.method} matching, orthogonal symmetry, in ${r.seconds.toFixed(2)} s on ${r.backend}`);
  // Weight matching's objective is the whole one, over its sweeps (the maps' own objectives are in the table).
  if (r.method === 'weight') out.text(`${r.iterations} sweeps; objective sum<A', g.B'> over the tensors the group acts on: ${r.objectiveBefore.toPrecision(7)} -> ${r.objectiveAfter.toPrecision(7)}`);
  const row = (name: string, m: typeof o.residual): string[] => [name, String(m.size), m.rowMaxMean.toFixed(3), m.objectiveBefore.toPrecision(6), m.objectiveAfter.toPrecision(6)];
  const mean = (xs: (typeof o.residual)[]): typeof o.residual => ({
    size: xs[0]?.size ?? 0,
    rowMaxMean: xs.reduce((s, m) => s + m.rowMaxMean, 0) / Math.max(1, xs.length),
    objectiveBefore: xs.reduce((s, m) => s + m.objectiveBefore, 0),
    objectiveAfter: xs.reduce((s, m) => s + m.objectiveAfter, 0),
  });
  const rows = [row('residual', o.residual), ...o.qk.flatMap((qk, l) => [row(`layer ${l} query/key (${qk.length} heads)`, mean(qk)), row(`layer ${l} value/output (${o.vo[l].length} heads)`, mean(o.vo[l]))])];
  out.text(table(['map', 'size', 'mean row max |R| (1 = permutation)', 'objective before', 'after'], rows));
  for (const [what, e] of [["A' = fold(A)", o.referenceEquivalence], ["B'", r.equivalence]] as const) {
    if (e) out.text(`equivalence check ${what}: max |logit difference| = ${e.maxAbsDiff.toExponential(2)} (relative ${e.relDiff.toExponential(2)}) ${e.ok ? 'ok' : 'FAILED'}${e.message ? ': ' + safeText(e.message, 400) : ''}`);
  }
  if (o.untiedHead) out.text("note: the tied output head became an untied lm_head.weight (config.json: tie_word_embeddings false)");
  if (r.out) out.text(`wrote ${safeText(r.out, 400)} (B') and ${safeText(r.referenceFolded ?? '', 400)} (A': A with folded norms, the reference B' is aligned to)`);
}

function printAlign(out: Output, r: Omit<AlignResult, 'matrices'>): void {
  warn(r.configDefaults);
  if (r.orthogonal) return printOrthogonal(out, r, r.orthogonal);
  out.text(`aligned with ${r.method} matching in ${r.seconds.toFixed(2)} s on ${r.backend}: ${r.iterations} sweeps`);
  out.text(`objective sum<A, pi(B)> over permuted tensors: ${r.objectiveBefore.toPrecision(7)} -> ${r.objectiveAfter.toPrecision(7)}`);
  // The tensors no permutation touches add the same term before and after: shown apart, not hidden in the sum.
  if (r.objectiveFixed !== undefined && r.objectiveFixed !== 0) out.text(`  (tensors no permutation touches add ${r.objectiveFixed.toPrecision(7)}, unchanged)`);
  out.text(table(['group', 'units', 'moved', 'objective before', 'after'], r.groups.map((g) => [g.name, String(g.size), String(g.moved), g.objectiveBefore.toPrecision(6), g.objectiveAfter.toPrecision(6)])));
  if (r.equivalence) {
    const e = r.equivalence;
    out.text(`equivalence check (${e.batch} batch): max |logit(B) - logit(pi(B))| = ${e.maxAbsDiff.toExponential(2)} (relative ${e.relDiff.toExponential(2)}) ${e.ok ? 'ok' : 'FAILED'}${e.message ? ': ' + safeText(e.message, 400) : ''}`);
  }
  if (r.out) out.text(`wrote ${safeText(r.out, 400)}`);
}

/** A numeric flag by its option's default and rule (src/core/methods). */
function optionFlag(args: ParsedArgs, o: NumberOption): number {
  const text = flagText(args, o.flag);
  if (text === undefined) return o.default;
  const n = Number(text);
  if (text.trim() === '' || !optionAccepts(o, n)) throw new UsageError(`--${o.flag} must be ${optionRule(o)}, got "${text}"`);
  return n;
}

/** `--symmetry`: the request field only when not the default, so a permutation request is what it always was. */
function symmetryOf(args: ParsedArgs): { symmetry?: 'orthogonal' } {
  return oneOf('symmetry', args.values.symmetry, SYMMETRY_IDS, DEFAULT_SYMMETRY) === 'orthogonal' ? { symmetry: 'orthogonal' } : {};
}

function seedAndIter(args: ParsedArgs): { seed: number; maxIter: number } {
  return { seed: optionFlag(args, SEED), maxIter: optionFlag(args, MAX_ITER) };
}

/** The method's own options from their flags (`--ste-epochs` ...), in the request field it declares; nothing for a method without options. */
function methodOptions(args: ParsedArgs, id: MethodId): MethodOptionFields {
  const m = methodInfo(id);
  if (m.optionsField === undefined) return {};
  return { [m.optionsField]: Object.fromEntries(m.options.map((o) => [o.field, optionFlag(args, o)])) } as MethodOptionFields;
}

export async function align(ctx: CommandContext): Promise<void> {
  const { args, out } = ctx;
  const [a, b] = expectPositionals(args, 2, 2, 'A B (align B onto A)');
  const method = oneOf('method', args.values.method, METHOD_IDS, DEFAULT_METHOD);
  const data = dataOptions(args, methodInfo(method).needsData);
  const result = await runOnEngine(ctx, {
    kind: 'align',
    a: path.resolve(a),
    b: path.resolve(b),
    out: requireOut(args),
    spec: resolved(args.values.spec),
    method,
    ...symmetryOf(args),
    ...seedAndIter(args),
    memoryBudget: byteSize('memory-budget', args.values['memory-budget']),
    data,
    model: resolved(args.values.model),
    ...methodOptions(args, method),
    allowNonFinite: args.values['allow-non-finite'] ?? false,
    keepOnMismatch: args.values['keep-on-mismatch'] ?? false,
    ...(args.values['out-of-core'] ? { outOfCore: true } : {}),
  }, 'align');
  if (args.values.json) out.json(result);
  else printAlign(out, result);
  if (result.equivalence && !result.equivalence.ok) {
    const outName = checkpointName(args.values.out ?? b);
    const fate = result.written ? `${outName} was kept (--keep-on-mismatch)` : `nothing was written (--keep-on-mismatch keeps ${outName} anyway)`;
    throw new Error(`${checkpointName(b)}: alignment changed the network's function: ${result.equivalence.message ?? 'check the permutation spec'}; ${fate}`);
  }
}

export async function merge(ctx: CommandContext): Promise<void> {
  const { args, out } = ctx;
  const inputs = expectPositionals(args, 2, Number.MAX_SAFE_INTEGER, 'two or more checkpoints (the first is the reference)');
  const repair = args.values.repair ?? false;
  if (repair && inputs.length > 2) throw new UsageError(`merge --repair takes two checkpoints, A and B (got ${inputs.length}): REPAIR interpolates the statistics of two models`);
  if (repair && args.values.data === undefined) throw new UsageError('merge --repair needs --data PATH (the data the units\' statistics are measured on)');
  // Weight matching needs no data: without --repair nothing would read it, so say so instead of ignoring it.
  if (!repair && args.values.data !== undefined) warn(['merge reads --data only with --repair (the units\' statistics); this merge uses weights alone']);
  const result: MergeResult = await runOnEngine(ctx, {
    kind: 'merge',
    inputs: inputs.map((p) => path.resolve(p)),
    out: requireOut(args),
    lambda: fraction('lambda', args.values.lambda, 0.5),
    align: !args.values['no-align'],
    ...symmetryOf(args),
    spec: resolved(args.values.spec),
    ...seedAndIter(args),
    memoryBudget: byteSize('memory-budget', args.values['memory-budget']),
    allowNonFinite: args.values['allow-non-finite'] ?? false,
    ...(repair ? { repair: true, data: dataOptions(args, true), model: resolved(args.values.model) } : {}),
  }, 'merge');
  if (args.values.json) return out.json(result);
  const how = result.method === 'none' ? 'without alignment' : result.method === 'mergemany' ? 'with MergeMany alignment' : 'after weight matching';
  out.text(`merged ${result.inputs.length} checkpoints ${how}, lambda ${formatLambda(result.lambda)}, in ${result.seconds.toFixed(2)} s on ${result.backend}`);
  const widened = result.widened ?? [];
  if (result.referenceFolded) out.text(`note: ${safeText(result.inputs[1], 400)} came from align --symmetry orthogonal: merged with ${safeText(result.referenceFolded, 400)} (A') instead of ${safeText(result.inputs[0], 400)}`);
  if (widened.length) out.text(`note: ${widened.length} tensor(s) written as ${widened[0].to}, not ${widened[0].from}: the inputs differ in dtype (first: \`${safeText(widened[0].tensor)}\`)`);
  if (result.repair) {
    const r = result.repair;
    out.text(`REPAIR folded into the weights: ${r.sites} site(s), statistics measured on the first ${r.examples} ${r.split === 'train' ? 'examples of the train split' : 'sequences'} of ${safeText(r.data, 400)}`);
    out.text(`check of the written weights against the repaired model: max |output difference| = ${r.check.maxAbsDiff.toPrecision(3)} (relative ${r.check.relDiff.toPrecision(3)}) ${r.check.ok ? 'ok' : 'over the tolerance (16-bit rounding)'}`);
  }
  out.text(`wrote ${result.out}`);
}

function curveTable(c: BarrierCurve): string {
  // Language models also show perplexity = exp(loss).
  const ppl = c.naive.perplexity !== undefined;
  const cols = (m: BarrierCurve['naive'], i: number): string[] => [m.loss[i].toFixed(4), m.acc[i].toFixed(4), ...(ppl ? [(m.perplexity?.[i] ?? Math.exp(m.loss[i])).toFixed(2)] : [])];
  const heads = (p: string): string[] => [`${p} loss`, `${p} acc`, ...(ppl ? [`${p} ppl`] : [])];
  return table(
    ['lambda', ...heads('naive'), ...(c.aligned ? heads('aligned') : [])],
    c.lambdas.map((l, i) => [l.toFixed(3), ...cols(c.naive, i), ...(c.aligned ? cols(c.aligned, i) : [])]),
  );
}

export async function barrier(ctx: CommandContext): Promise<void> {
  const { args, out } = ctx;
  const [a, b] = expectPositionals(args, 2, 2, 'A B');
  const alignedCheckpoint = resolved(args.values.aligned);
  if (alignedCheckpoint !== undefined && args.values.method !== undefined) throw new UsageError('--aligned evaluates a checkpoint already aligned; --method aligns B again: give one of them');
  if (alignedCheckpoint !== undefined && args.values['no-align']) throw new UsageError('--aligned gives the aligned path; --no-align asks for none: give one of them');
  const method = oneOf('method', args.values.method, METHOD_IDS, DEFAULT_METHOD);
  // Bad usage is exit 2 even when telling it takes a look at A (the engine would refuse it as an error).
  if (args.values.split === 'both' && lmCheckpointFamily(path.resolve(a))) throw new UsageError('--split both: token data has no train/test splits (A is a language model): evaluate it once');
  const result: BarrierResult = await runOnEngine(ctx, {
    kind: 'barrier',
    a: path.resolve(a),
    b: path.resolve(b),
    data: dataOptions(args, true)!,
    model: resolved(args.values.model),
    spec: resolved(args.values.spec),
    steps: stepsOf(args),
    align: !args.values['no-align'],
    ...seedAndIter(args),
    resetBatchNorm: args.values['reset-bn'] ?? false,
    ...(args.values.repair ? { repair: true } : {}),
    memoryBudget: byteSize('memory-budget', args.values['memory-budget']),
    allowNonFinite: args.values['allow-non-finite'] ?? false,
    ...(alignedCheckpoint !== undefined ? { alignedCheckpoint } : { method, ...methodOptions(args, method), ...symmetryOf(args) }),
  }, 'barrier');
  if (args.values.json) return out.json(result);
  if (!result.align) warn(result.lm?.configDefaults);
  if (result.align) printAlign(out, result.align);
  const from = result.alignedFrom;
  if (from) {
    const how = from.source === 'checkpoint' ? `the aligned checkpoint ${from.checkpoint ?? ''}` : from.source === 'permutations' ? 'the given permutations' : 'this run';
    const symmetry = from.symmetry === 'orthogonal' ? `, orthogonal symmetry (the path starts at A' = A with folded norms${from.referenceFolded ? `, ${safeText(from.referenceFolded, 400)}` : ''})` : '';
    out.text(`aligned path: ${from.method === 'unknown' ? 'method unknown' : `${from.method} matching`}, from ${how}${symmetry}`);
  }
  if (result.lm) {
    const lm = result.lm;
    out.text(`language model: ${lm.model}`);
    out.text(`data: ${lm.data}; ${lm.objective === 'causal' ? 'next-token' : 'masked-token'} loss over ${lm.positions} positions of ${lm.sequences} sequences of ${lm.seqLen} tokens`);
  }
  if (result.evaluation?.repair) {
    const r = result.evaluation.repair;
    out.text(`REPAIR at each lambda: hidden units' statistics measured on the first ${r.examples} examples of the ${r.split} split`);
  }
  if (result.evaluation?.batchNormReset) {
    const r = result.evaluation.batchNormReset;
    out.text(`BatchNorm statistics recomputed at each lambda on the first ${r.examples} examples of the ${r.split} split (batches of ${r.batchSize})`);
  }
  const curves: [string, BarrierCurve][] = result.splits ? Object.entries(result.splits).filter((e): e is [string, BarrierCurve] => e[1] !== undefined) : [['test', result]];
  for (const [split, c] of curves) {
    out.text(result.lm ? '\nalong the path:' : `\n${split} split:`);
    out.text(curveTable(c));
    out.text(`barrier: naive ${c.barrier.naive.toFixed(4)}${c.barrier.aligned !== undefined ? `, aligned ${c.barrier.aligned.toFixed(4)}` : ''}`);
  }
  out.text(`${result.seconds.toFixed(2)} s on ${result.backend} with ${result.workers} worker(s)`);
}

export async function convert({ args, out, signal }: CommandContext): Promise<void> {
  const [file] = expectPositionals(args, 1, 1, 'one checkpoint to convert (PyTorch .pt/.pth/.bin/.ckpt, Flax msgpack, or safetensors)');
  const result = await convertToSafetensors(weightsPath(file), requireOut(args), signal);
  if (args.values.json) return out.json(result);
  out.text(`${formatCount(result.tensors)} tensors (${formatBytes(result.bytes)}) from ${safeText(path.basename(result.input), 200)} (${result.format}${result.origin ? `, weights at ${result.origin}` : ''})`);
  out.text(`wrote ${result.out}`);
}


/** A figure for a table: 4 significant digits, "-" when it does not exist (cosine of a zero tensor). */
function figure(x: number | null | undefined): string {
  return x === null || x === undefined || Number.isNaN(x) ? '-' : x.toPrecision(4);
}

function printDiff(out: Output, r: DiffResult): void {
  const al = r.aligned;
  const alignedBy = al ? new Map(al.tensors.map((t) => [t.name, t])) : undefined;
  const alignedLayer = al ? new Map(al.layers.map((l) => [l.name, l])) : undefined;
  out.text(`A: ${safeText(r.a, 400)}`);
  out.text(`B: ${safeText(r.b, 400)}`);
  out.text(`${formatCount(r.tensors.length)} tensors compared; only in A: ${r.onlyInA.length}, only in B: ${r.onlyInB.length}, shape or dtype differs: ${r.mismatches.length}, not numeric: ${r.skipped.length}`);
  const t = r.totals;
  out.text(`total: ||A-B|| = ${figure(t.l2)}, relative ${figure(t.relative)}, cosine ${figure(t.cosine)}, max |A-B| ${figure(t.maxAbs)}`);
  if (al) {
    out.text(`aligned (${al.method} matching): ||A-pi(B)|| = ${figure(al.totals.l2)}, relative ${figure(al.totals.relative)}, cosine ${figure(al.totals.cosine)}, max |A-pi(B)| ${figure(al.totals.maxAbs)}`);
  }
  if (t.nonFinite) out.text(`note: ${formatCount(t.nonFinite)} value pair(s) with NaN or Inf are left out of the figures`);
  out.text('');
  const alignedCols = al ? ['aligned relative', 'aligned cosine'] : [];
  out.text(table(['layer', 'tensors', 'relative', 'cosine', ...alignedCols], r.layers.map((l) => {
    const x = alignedLayer?.get(l.name);
    return [l.name, String(l.tensors), figure(l.relative), figure(l.cosine), ...(x ? [figure(x.relative), figure(x.cosine)] : [])];
  })));
  out.text('');
  writeTable(['tensor', 'shape', 'dtype', 'relative', 'cosine', 'max |A-B|', ...alignedCols], r.tensors.length, (i) => {
    const x = r.tensors[i];
    const y = alignedBy?.get(x.name);
    return [x.name, `[${x.shape.join(', ')}]`, x.dtypeB ? `${x.dtype}/${x.dtypeB}` : x.dtype, figure(x.relative), figure(x.cosine), figure(x.maxAbs), ...(y ? [figure(y.relative), figure(y.cosine)] : [])];
  }, (chunk) => out.text(chunk));
  if (r.mismatches.length) {
    out.text('');
    out.text(table(['differs', 'shape A', 'shape B', 'dtype A', 'dtype B', 'compared'], r.mismatches.map((m) => [m.name, `[${m.shapeA.join(', ')}]`, `[${m.shapeB.join(', ')}]`, m.dtypeA, m.dtypeB, m.compared ? 'yes' : 'no'])));
  }
  for (const [side, names] of [['A', r.onlyInA], ['B', r.onlyInB]] as const) {
    if (names.length) out.text(`\nonly in ${side} (${names.length}): ${names.slice(0, 20).map((n) => safeText(n, 120)).join(', ')}${names.length > 20 ? ', ...' : ''}`);
  }
  for (const s of r.skipped) out.text(`not compared: ${safeText(s.name, 200)}: ${s.reason}`);
  if (al) {
    out.text('');
    out.text(table(['permutation', 'units', 'moved'], al.permutations.map((p) => [p.name, String(p.size), String(p.moved)])));
  }
}

export async function diff(ctx: CommandContext): Promise<void> {
  const { args, out } = ctx;
  const [a, b] = expectPositionals(args, 2, 2, 'A B (compare B with A)');
  const align = args.values.align ?? false;
  if (!align) {
    for (const flag of ['method', 'spec', 'data', 'model', 'symmetry', SEED.flag, MAX_ITER.flag, 'memory-budget']) {
      if (flagText(args, flag) !== undefined) throw new UsageError(`--${flag} is an option of --align`);
    }
  }
  // The diff's aligned view is π(B) under permutations; orthogonal maps change both models' form (A').
  if (oneOf('symmetry', args.values.symmetry, SYMMETRY_IDS, DEFAULT_SYMMETRY) !== 'permutation') {
    throw new UsageError('diff --align compares under permutations only (--symmetry permutation); --symmetry orthogonal is an option of align, merge and barrier');
  }
  const method = oneOf('method', args.values.method, METHOD_IDS, DEFAULT_METHOD);
  const result: DiffResult = await runOnEngine(ctx, {
    kind: 'diff',
    a: path.resolve(a),
    b: path.resolve(b),
    ...(align
      ? {
          align: true,
          method,
          spec: resolved(args.values.spec),
          ...seedAndIter(args),
          memoryBudget: byteSize('memory-budget', args.values['memory-budget']),
          data: dataOptions(args, methodInfo(method).needsData),
          model: resolved(args.values.model),
          allowNonFinite: args.values['allow-non-finite'] ?? false,
        }
      : {}),
  }, 'diff');
  if (args.values.json) return out.json(result);
  printDiff(out, result);
}

export async function scan(ctx: CommandContext): Promise<void> {
  const { args, out } = ctx;
  const [file] = expectPositionals(args, 1, 1, 'one FILE (.safetensors, .safetensors.index.json or a Hugging Face folder)');
  const r: ScanResult = await runOnEngine(ctx, { kind: 'scan', path: path.resolve(file) }, 'scan');
  if (args.values.json) return out.json(r);
  out.text(`${safeText(r.path, 400)}: ${formatCount(r.tensors.length)} tensors scanned in ${r.seconds.toFixed(2)} s; ${r.flagged} flagged`);
  out.text(`  flags: nan, inf = some values are NaN / Inf; all-zero; constant = every value equal; extreme = max |x| > ${r.rule.extremeAbs} or std > ${r.rule.extremeStdRatio} x the median std (${figure(r.medianStd)})`);
  out.text(`  dtypes: ${r.dtypes.map((d) => `${d.dtype} ${formatCount(d.tensors)} tensors, ${formatCount(d.params)} values, ${formatBytes(d.bytes)}`).join('; ')}`);
  for (const s of r.skipped) out.text(`  not scanned: ${safeText(s.name, 200)}: ${s.reason}`);
  out.text('');
  writeTable(['tensor', 'dtype', 'shape', 'min', 'max', 'mean', 'std', 'NaN', 'Inf', 'zeros', 'flags'], r.tensors.length, (i) => {
    const x = r.tensors[i];
    return [x.name, x.dtype, `[${x.shape.join(', ')}]`, figure(x.min), figure(x.max), figure(x.mean), figure(x.std), String(x.nanCount), String(x.infCount), String(x.zeroCount), x.flags.join(',')];
  }, (chunk) => out.text(chunk));
}

export const COMMANDS: Readonly<Record<string, (ctx: CommandContext) => Promise<void>>> = { inspect, spec, align, merge, barrier, convert, diff, scan };
