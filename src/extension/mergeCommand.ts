/**
 * "Merge checkpoints…": pick two or more checkpoints and the reference; every other one is
 * aligned to the reference (weight matching for two, MergeMany for more: paper §4 / appendix)
 * and the weights averaged — `(1−λ)·ref + λ·π(other)` for two, the uniform mean for more.
 * λ defaults to the best point of the last barrier curve of that pair, else 0.5; a λ near an end
 * is explained. With evaluation data the merged model's loss and accuracy are measured and shown
 * beside its inputs'. A merge of Hugging Face folders is written as a folder (as the CLI's --out DIR).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Progress } from '../core/checkpoint';
import { checkpointName, checkpointNamePair } from '../core/checkpointName';
import { weightsPath } from '../core/hf/layout';
import { mergePartner } from '../core/symmetry/mergePartner';
import { formatLambda, formatNumber, formatPercent } from '../core/numberText';
import { isCancelled } from '../engine/errors';
import type { MergeResult } from '../engine/protocol';
import { evaluationDataOptions } from './barrierCommand';
import { defaultData } from './dataChoice';
import { checkCandidates, folderLabel, pickDescription, pickMany, readTensorList } from './checkpointPicker';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { timed } from './log';
import { mergeSummary } from './outcomeText';
import { confirmOutput, describeError, fileStamp, reportFailure, withCancellableProgress } from './runSupport';
import { mergedOutputPath, readSettings, type Settings } from './settings';
import { requireTrust } from './workspaceTrust';

export interface MergeOptions {
  /** All checkpoints to merge (two or more). */
  readonly inputs?: readonly vscode.Uri[];
  /** The one the others are aligned to (default: the first input). */
  readonly reference?: vscode.Uri;
  readonly lambda?: number;
  /** Default: `<reference>.merged.safetensors` beside it; a folder `<folder>-merged` beside a Hugging Face model folder. */
  readonly out?: vscode.Uri;
  readonly replace?: boolean;
  /** Data to evaluate the merged model on; `null`: none. Default: the reference's remembered choice, else `rebasin.evaluationData`. */
  readonly data?: vscode.Uri | null;
  /** Open the merged checkpoint in the inspector afterwards (default true). */
  readonly openResult?: boolean;
}

export interface MergeOutcome {
  readonly out: string;
  readonly result: MergeResult;
  /** Loss and accuracy of the merged model (with evaluation data), or why there are none. */
  readonly quality?: string;
  /** Set when λ is within 0.1 of an end: what that means. */
  readonly endpointNote?: string;
  readonly runId: string;
}

export function mergeCheckpoints(deps: Deps) {
  return async (options?: unknown): Promise<MergeOutcome | undefined> => {
    const automated = typeof options === 'object' && options !== null && !(options instanceof vscode.Uri);
    try {
      return await runMerge(deps, automated ? (options as MergeOptions) : {});
    } catch (err) {
      reportFailure(deps.log, 'merge', err);
      if (automated) throw err;
      return undefined;
    }
  };
}

async function runMerge(deps: Deps, opts: MergeOptions): Promise<MergeOutcome | undefined> {
  if (!(await requireTrust('merging checkpoints'))) return undefined;
  const inputs = opts.inputs ? [...opts.inputs] : await pickMany('Merge checkpoints', 2);
  if (!inputs) return undefined;
  if (inputs.length < 2) throw new CommandError('TooFewInputs', `merging needs at least two checkpoints, got ${inputs.length}`);
  if (new Set(inputs.map((u) => u.fsPath)).size !== inputs.length) {
    throw new CommandError('SameCheckpoint', 'the same checkpoint was selected twice');
  }

  const reference = opts.reference ?? (await pickReference(inputs));
  if (!reference) return undefined;
  const others = inputs.filter((u) => u.fsPath !== reference.fsPath);
  if (others.length !== inputs.length - 1) throw new CommandError('SameCheckpoint', `${checkpointName(reference.fsPath)} is not one of the inputs`, reference.fsPath);

  // Header check of every input against the reference, before any work; B' of align --symmetry
  // orthogonal against the A' it names, which the engine merges it with (core/symmetry/mergePartner.ts).
  const partner = await mergePartner([reference.fsPath, ...others.map((u) => u.fsPath)]);
  const refTensors = await readTensorList(partner);
  for (const c of await checkCandidates(partner, refTensors, others)) {
    if (c.problem) throw new CommandError('Incompatible', c.problem, c.uri.fsPath);
  }

  const [refName, ...otherNames] = namesOf([reference, ...others]);
  let lambda = 0.5;
  let endpointNote: string | undefined;
  if (others.length === 1) {
    const suggested = deps.history.suggestedLambda(reference.fsPath, others[0].fsPath);
    const picked = opts.lambda ?? (await askLambda(suggested, refName, otherNames[0]));
    if (picked === undefined) return undefined;
    if (!(picked >= 0 && picked <= 1)) throw new CommandError('BadLambda', `lambda must be between 0 and 1, got ${picked}`);
    lambda = picked;
    endpointNote = nearEndpointNote(lambda, refName, otherNames[0]);
  }

  const settings = readSettings(reference);
  const out = opts.out?.fsPath ?? mergedOutputPath(reference.fsPath);
  const all = [reference, ...others].map((u) => u.fsPath);
  // The merged model is evaluated on the reference's data when there is some (its remembered choice, else the setting).
  const data = await defaultData(deps.data, reference, reference, opts.data, settings.evaluationData);
  const dataPath = data.path;
  const dataProblem = data.problem;
  if (!(await confirmOutput(out, all, opts.replace))) return undefined;

  const label = `merge ${[refName, ...otherNames].join(' + ')} (λ=${formatLambda(lambda)})`;
  const { result, quality } = await withCancellableProgress(`Re-Basin: merging ${all.length} checkpoints`, async (report, signal) => {
    const merged = await timed(deps.log, label, () =>
      deps.engine.run(
        { kind: 'merge', inputs: all, out, lambda, align: true, seed: settings.seed, maxIter: settings.maxIterations, memoryBudget: settings.memoryBudget },
        { onProgress: (p) => report(p, { start: 0, end: dataPath ? 0.6 : 1 }), signal },
      ),
    );
    if (!dataPath) return { result: merged, quality: dataProblem ? `not evaluated: ${dataProblem}` : undefined };
    try {
      // The ends as the engine merged them: A' in place of A for a B' that names it (same function as A, B''s head).
      const measured = await evaluateMerge(deps, merged.out, [partner, ...all.slice(1)], dataPath, settings, (p) => report(p, { start: 0.6, end: 1 }), signal);
      return { result: merged, quality: qualityText(measured, [refName, ...otherNames], dataPath) };
    } catch (err) {
      // The merge is on disk; only its evaluation failed (or was cancelled).
      return { result: merged, quality: isCancelled(err) ? 'evaluation cancelled' : `evaluation failed: ${describeError(err)}` };
    }
  });
  if (quality) deps.log.info(`${label}: ${quality}`);
  const note = [quality, endpointNote].filter((x): x is string => x !== undefined).join(' ');
  const run = await deps.history.add({
    kind: 'merge',
    a: refName,
    b: otherNames[0],
    others: otherNames.slice(1),
    aPath: reference.fsPath,
    bPath: others[0].fsPath,
    otherPaths: others.slice(1).map((u) => u.fsPath),
    outPath: result.out,
    out: checkpointName(result.out),
    outStamp: await fileStamp(result.out),
    method: result.method,
    backend: result.backend,
    seconds: result.seconds,
    ...(note ? { note: `${mergeSummary(result).replace(/^Re-Basin: /, '')} ${note}` } : {}),
    folder: folderLabel(reference),
    seed: settings.seed,
  });
  const outUri = vscode.Uri.file(result.out);
  if (opts.openResult !== false) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(weightsPath(result.out)), 'rebasin.inspector');
  const text = [mergeSummary(result), quality ? `Merged model: ${quality}.` : undefined, endpointNote].filter((x) => x !== undefined).join(' ');
  void (endpointNote ? vscode.window.showWarningMessage(text, 'Reveal in Explorer') : vscode.window.showInformationMessage(text, 'Reveal in Explorer')).then(async (c) => {
    if (c) await vscode.commands.executeCommand('revealInExplorer', outUri);
  });
  return { out: result.out, result, ...(quality ? { quality } : {}), ...(endpointNote ? { endpointNote } : {}), runId: run.id };
}

/** Display names of the inputs, told apart when two read alike (two `model.safetensors` in folders of one name). */
function namesOf(uris: readonly vscode.Uri[]): string[] {
  const names = uris.map((u) => checkpointName(u.fsPath));
  return names.map((n, i) => {
    const twin = names.findIndex((m, j) => j !== i && m === n);
    return twin < 0 ? n : checkpointNamePair(uris[i].fsPath, uris[twin].fsPath)[0];
  });
}

/** Loss and accuracy of the merged model, and of the reference and the other at the ends (two inputs). */
interface MergeQuality {
  readonly merged: Metric;
  readonly ends?: readonly [Metric, Metric];
  readonly perplexity: boolean;
}
interface Metric {
  readonly loss: number;
  readonly acc: number;
}

async function evaluateMerge(deps: Deps, out: string, inputs: readonly string[], dataPath: string, settings: Settings, report: (p: Progress) => void, signal: AbortSignal): Promise<MergeQuality> {
  const data = evaluationDataOptions(dataPath, settings);
  const common = { data, model: settings.modelConfig, ...(settings.memoryBudget !== undefined ? { memoryBudget: settings.memoryBudget } : {}) };
  report({ stage: 'evaluating', message: `Evaluating the merged model on ${path.basename(dataPath)}` });
  const merged = await deps.engine.run({ kind: 'evaluatePath', a: out, b: out, lambdas: [0], ...common }, { signal });
  const m = { loss: merged.loss[0], acc: merged.acc[0] };
  if (inputs.length !== 2) return { merged: m, perplexity: merged.perplexity !== undefined };
  report({ stage: 'evaluating', message: 'Evaluating the two inputs for comparison', fraction: 0.5 });
  const ends = await deps.engine.run({ kind: 'evaluatePath', a: inputs[0], b: inputs[1], lambdas: [0, 1], ...common }, { signal });
  return { merged: m, ends: [{ loss: ends.loss[0], acc: ends.acc[0] }, { loss: ends.loss[1], acc: ends.acc[1] }], perplexity: merged.perplexity !== undefined };
}

/** "loss 0.412, accuracy 91.2% on eval.safetensors (a: loss 0.35, 93.0%; b: …)" */
function qualityText(q: MergeQuality, names: readonly string[], dataPath: string): string {
  const one = (x: Metric): string => `loss ${formatNumber(x.loss)}${q.perplexity ? ` (perplexity ${formatNumber(Math.exp(x.loss))})` : ''}, ${q.perplexity ? 'token accuracy' : 'accuracy'} ${formatPercent(x.acc)}`;
  const ends = q.ends ? `; ${names[0]}: ${one(q.ends[0])}; ${names[1]}: ${one(q.ends[1])}` : '';
  return `${one(q.merged)} on ${path.basename(dataPath)}${ends}`;
}

/**
 * A λ within 0.1 of an end makes the merge nearly one of its inputs: said in words, since a
 * suggestion from a curve whose lowest point sits at an end means averaging did not help there.
 */
export function nearEndpointNote(lambda: number, refName: string, otherName: string): string | undefined {
  if (lambda > 0.1 && lambda < 0.9) return undefined;
  const near = lambda <= 0.1 ? refName : otherName;
  return `λ=${formatLambda(lambda)} is close to ${near}: the merge is nearly ${near} alone (when λ comes from a barrier curve, its lowest point sits at that end: averaging the two models does not lower the loss there).`;
}

async function pickReference(inputs: readonly vscode.Uri[]): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showQuickPick(
    inputs.map((uri) => ({ label: checkpointName(uri.fsPath), description: pickDescription(uri), uri })),
    { title: 'Merge checkpoints: reference', placeHolder: 'The others are aligned to this one; the merge goes beside it', ignoreFocusOut: true, matchOnDescription: true },
  );
  return picked?.uri;
}

async function askLambda(suggested: number | undefined, refName: string, other: string): Promise<number | undefined> {
  const initial = suggested ?? 0.5;
  const warning = suggested !== undefined ? nearEndpointNote(suggested, refName, other) : undefined;
  const value = await vscode.window.showInputBox({
    title: 'Merge checkpoints: λ',
    prompt: `Weight of ${other} in (1−λ)·${refName} + λ·π(${other}), between 0 and 1${suggested !== undefined ? ` (suggested: ${formatLambda(suggested)}, the lowest point of the last barrier curve)` : ''}${warning ? `. ${warning}` : ''}`,
    value: formatLambda(initial),
    ignoreFocusOut: true,
    validateInput: (text) => {
      const x = Number(text);
      return text.trim() !== '' && Number.isFinite(x) && x >= 0 && x <= 1 ? undefined : 'Enter a number between 0 and 1';
    },
  });
  return value === undefined ? undefined : Number(value);
}
