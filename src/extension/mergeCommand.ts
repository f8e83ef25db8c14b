/**
 * "Merge checkpoints…": pick two or more checkpoints and the reference; every other one is
 * aligned to the reference (weight matching for two, MergeMany for more: paper §4 / appendix)
 * and the weights averaged — `(1−λ)·ref + λ·π(other)` for two, the uniform mean for more.
 * λ defaults to the best point of the last barrier curve of that pair, else 0.5.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { MergeResult } from '../engine/protocol';
import { checkCandidates, folderLabel, pickMany, readTensorList } from './checkpointPicker';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { timed } from './log';
import { confirmOutput, reportFailure, withCancellableProgress } from './runSupport';
import { mergedOutputPath, readSettings } from './settings';
import { requireTrust } from './workspaceTrust';

export interface MergeOptions {
  /** All checkpoints to merge (two or more). */
  readonly inputs?: readonly vscode.Uri[];
  /** The one the others are aligned to (default: the first input). */
  readonly reference?: vscode.Uri;
  readonly lambda?: number;
  readonly out?: vscode.Uri;
  readonly replace?: boolean;
  /** Open the merged checkpoint in the inspector afterwards (default true). */
  readonly openResult?: boolean;
}

export interface MergeOutcome {
  readonly out: string;
  readonly result: MergeResult;
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
  if (others.length !== inputs.length - 1) throw new CommandError('SameCheckpoint', `${path.basename(reference.fsPath)} is not one of the inputs`, reference.fsPath);

  // Header check of every input against the reference, before any work.
  const refTensors = await readTensorList(reference.fsPath);
  for (const c of await checkCandidates(reference.fsPath, refTensors, others)) {
    if (c.problem) throw new CommandError('Incompatible', c.problem, c.uri.fsPath);
  }

  let lambda = 0.5;
  if (others.length === 1) {
    const suggested = deps.history.suggestedLambda(reference.fsPath, others[0].fsPath);
    const picked = opts.lambda ?? (await askLambda(suggested ?? 0.5, suggested !== undefined, path.basename(others[0].fsPath)));
    if (picked === undefined) return undefined;
    if (!(picked >= 0 && picked <= 1)) throw new CommandError('BadLambda', `lambda must be between 0 and 1, got ${picked}`);
    lambda = picked;
  }

  const settings = readSettings(reference);
  const out = opts.out?.fsPath ?? mergedOutputPath(reference.fsPath);
  const all = [reference, ...others].map((u) => u.fsPath);
  if (!(await confirmOutput(out, all, opts.replace))) return undefined;

  const label = `merge ${all.map((f) => path.basename(f)).join(' + ')} (λ=${lambda})`;
  const result = await withCancellableProgress(`Re-Basin: merging ${all.length} checkpoints`, (report, signal) =>
    timed(deps.log, label, () =>
      deps.engine.run(
        { kind: 'merge', inputs: all, out, lambda, align: true, seed: settings.seed, maxIter: settings.maxIterations, memoryBudget: settings.memoryBudget },
        { onProgress: report, signal },
      ),
    ),
  );
  const run = await deps.history.add({
    kind: 'merge',
    a: path.basename(reference.fsPath),
    b: path.basename(others[0].fsPath),
    others: others.slice(1).map((u) => path.basename(u.fsPath)),
    aPath: reference.fsPath,
    bPath: others[0].fsPath,
    otherPaths: others.slice(1).map((u) => u.fsPath),
    outPath: result.out,
    out: path.basename(result.out),
    method: result.method,
    backend: result.backend,
    seconds: result.seconds,
    folder: folderLabel(reference),
    seed: settings.seed,
  });
  const outUri = vscode.Uri.file(result.out);
  if (opts.openResult !== false) await vscode.commands.executeCommand('vscode.openWith', outUri, 'rebasin.inspector');
  void vscode.window
    .showInformationMessage(
      `Re-Basin: merged ${all.length} checkpoints (${result.method}, λ=${result.lambda}) into ${path.basename(result.out)}.`,
      'Reveal in Explorer',
    )
    .then(async (c) => {
      if (c) await vscode.commands.executeCommand('revealInExplorer', outUri);
    });
  return { out: result.out, result, runId: run.id };
}

async function pickReference(inputs: readonly vscode.Uri[]): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showQuickPick(
    inputs.map((uri) => ({ label: path.basename(uri.fsPath), description: folderLabel(uri), uri })),
    { title: 'Merge checkpoints: reference', placeHolder: 'The others are aligned to this one; the merge is written beside it', ignoreFocusOut: true },
  );
  return picked?.uri;
}

async function askLambda(initial: number, fromCurve: boolean, other: string): Promise<number | undefined> {
  const value = await vscode.window.showInputBox({
    title: 'Merge checkpoints: λ',
    prompt: `Weight of ${other} in (1−λ)·reference + λ·π(${other}), between 0 and 1${fromCurve ? ' (suggested: the lowest point of the last barrier curve)' : ''}`,
    value: String(Math.round(initial * 1000) / 1000),
    ignoreFocusOut: true,
    validateInput: (text) => {
      const x = Number(text);
      return text.trim() !== '' && Number.isFinite(x) && x >= 0 && x <= 1 ? undefined : 'Enter a number between 0 and 1';
    },
  });
  return value === undefined ? undefined : Number(value);
}
