/**
 * "Compute barrier…": loss and accuracy of (1−λ)·A + λ·B on a λ grid, naive and after aligning
 * B to A (paper §2/§5: the loss barrier is the largest rise of the curve above the straight line
 * between its endpoints). Needs evaluation data: picked for the run (the choice remembered per
 * model first, then the `rebasin.evaluationData` setting), checked against the model first.
 */
import * as vscode from 'vscode';
import { checkpointName, checkpointNamePair } from '../core/checkpointName';
import type { BarrierResult, DataOptions } from '../engine/protocol';
import { AlignmentPanel } from './alignmentPanel';
import { folderLabel, pickCompatible, pickOne, readTensorList } from './checkpointPicker';
import { defaultData, pickEvaluationData } from './dataChoice';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { timed } from './log';
import { barrierState, curveOf } from './panelState';
import { formatNumber, otherSelected, reportFailure, targetUri, withCancellableProgress } from './runSupport';
import { readSettings, type Settings } from './settings';
import { requireTrust } from './workspaceTrust';

export interface BarrierOptions {
  /** Reference A (explorer invocations pass B as the clicked file). */
  readonly a?: vscode.Uri;
  readonly b?: vscode.Uri;
  /** Evaluation data (file or folder); default: the choice remembered for B, else `rebasin.evaluationData`. */
  readonly data?: vscode.Uri;
  /** Also compute the aligned path (default true). */
  readonly align?: boolean;
  readonly openPanel?: boolean;
}

export interface BarrierOutcome {
  readonly result: BarrierResult;
  readonly runId: string;
}

export function computeBarrier(deps: Deps, fromExplorer: boolean) {
  return async (uri?: unknown, uris?: unknown, options?: unknown): Promise<BarrierOutcome | undefined> => {
    // The palette command takes options as its first argument, the explorer one third.
    const raw = fromExplorer ? options : (uri ?? options);
    const automated = typeof raw === 'object' && raw !== null && !(raw instanceof vscode.Uri);
    const opts = automated ? (raw as BarrierOptions) : {};
    try {
      return await runBarrier(deps, fromExplorer ? uri : undefined, uris, opts, automated);
    } catch (err) {
      reportFailure(deps.log, 'barrier', err);
      if (automated) throw err;
      return undefined;
    }
  };
}

async function runBarrier(deps: Deps, uri: unknown, uris: unknown, opts: BarrierOptions, automated: boolean): Promise<BarrierOutcome | undefined> {
  if (!(await requireTrust('computing loss barriers'))) return undefined;
  const b = opts.b ?? (uri === undefined ? await pickOne('Compute barrier (1 of 2): model B', 'Pick model B: the one aligned to the reference A you pick next', true) : targetUri(uri));
  if (!b) return undefined;
  await readTensorList(b.fsPath);
  const selected = otherSelected(b, uris);
  const a = opts.a ?? (selected.length === 1 ? selected[0] : await pickCompatible(b, `Compute barrier: ${checkpointName(b.fsPath)} with…`));
  if (!a) return undefined;
  if (a.fsPath === b.fsPath) throw new CommandError('SameCheckpoint', `${checkpointName(a.fsPath)}: a barrier needs two different checkpoints`, a.fsPath);

  const settings = readSettings(b);
  // The given data, else B's remembered choice, else the setting, when it suits the model; else picked now (and remembered).
  const initial = await defaultData(deps.data, b, a, opts.data, settings.evaluationData);
  let dataPath = initial.path;
  if (!dataPath && automated) throw new CommandError('NeedsData', `a loss barrier needs evaluation data: ${initial.problem ?? 'pick a data set, or set `rebasin.evaluationData`'}`);
  if (!dataPath) {
    dataPath = (await pickEvaluationData(deps.data, { model: b, evaluated: a, setting: settings.evaluationData, required: true, title: 'Compute barrier: evaluation data', problem: initial.problem })) ?? undefined;
    if (!dataPath) return undefined;
  }

  const [aName, bName] = checkpointNamePair(a.fsPath, b.fsPath);
  const label = `barrier ${aName} ↔ ${bName}`;
  const result = await withCancellableProgress(`Re-Basin: loss barrier ${aName} ↔ ${bName}`, (report, signal) =>
    timed(deps.log, label, () =>
      deps.engine.run(
        {
          kind: 'barrier',
          a: a.fsPath,
          b: b.fsPath,
          data: evaluationDataOptions(dataPath, settings),
          model: settings.modelConfig,
          steps: settings.lambdaSteps,
          align: opts.align !== false,
          seed: settings.seed,
          maxIter: settings.maxIterations,
          resetBatchNorm: settings.resetBatchNorm,
          ...(settings.memoryBudget !== undefined ? { memoryBudget: settings.memoryBudget } : {}),
        },
        { onProgress: report, signal },
      ),
    ),
  );
  deps.log.info(
    `${label}: barrier naive ${formatNumber(result.barrier.naive)}${result.barrier.aligned !== undefined ? `, aligned ${formatNumber(result.barrier.aligned)}` : ''} on ${result.backend} (${result.workers} worker(s))`,
  );
  const state = barrierState(a.fsPath, b.fsPath, result, dataPath);
  const run = await deps.history.add(
    {
      kind: 'barrier',
      a: aName,
      b: bName,
      aPath: a.fsPath,
      bPath: b.fsPath,
      method: result.align?.method ?? 'none',
      backend: result.backend,
      seconds: result.seconds,
      barrier: result.barrier,
      curve: curveOf(result),
      folder: folderLabel(b),
      seed: settings.seed,
    },
    state,
  );
  if (opts.openPanel !== false) AlignmentPanel.show(deps.extensionUri, deps.log, state);
  return { result, runId: run.id };
}

/** The data request: a data set, or token data / text for a language model (tokenizer and window from the settings). */
export function evaluationDataOptions(dataPath: string, settings: Pick<Settings, 'tokenizer' | 'sequenceLength'>): DataOptions {
  return {
    path: dataPath,
    ...(settings.tokenizer ? { tokenizer: settings.tokenizer } : {}),
    ...(settings.sequenceLength && settings.sequenceLength >= 2 ? { seqLen: settings.sequenceLength } : {}),
  };
}

