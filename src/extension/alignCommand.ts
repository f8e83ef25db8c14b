/**
 * "Align with…": permute checkpoint B's hidden units onto reference A (Git Re-Basin, Ainsworth
 * et al. 2023, §3: weight matching, activation matching, straight-through estimator) in the
 * compute worker, write π(B) beside B, record the run and open the alignment panel.
 *
 * From the explorer the handler gets `(uri, uris)`; automation and tests may pass a third
 * argument `AlignOptions` that skips the picks (and makes failures reject instead of only
 * showing a notification).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointName, checkpointNamePair } from '../core/checkpointName';
import { METHODS, methodInfo } from '../core/methods';
import { evaluationDataOptions } from './barrierCommand';
import type { CurvePoint } from '../core/checkpoint';
import type { AlignMethod, AlignResult, BarrierCurve, DataOptions } from '../engine/protocol';
import type { DataProvenance } from '../../webview/protocol';
import { CurveAssembler } from '../core/curveAssembler';
import { AlignmentPanel } from './alignmentPanel';
import { checkCandidates, folderLabel, pickCompatible, readTensorList } from './checkpointPicker';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { timed } from './log';
import { defaultData, pickEvaluationData } from './dataChoice';
import { alignLogLine, alignSummary, alignWrite, cancelledText, curveCancelledLogLine, curveStartText, keptNote, notWrittenNote, type AlignWrite, type CurveEnd } from './outcomeText';
import { alignmentState, alignmentTitle, curveOf, dataProvenance, runningState } from './panelState';
import { isCancelled } from '../engine/errors';
import { confirmOutput, describeError, fileStamp, otherSelected, reportFailure, targetUri, withCancellableProgress } from './runSupport';
import { alignedOutputPath, orthogonalOutputPath, readSettings } from './settings';
import { requireTrust } from './workspaceTrust';
import { orthogonalModelKind } from '../core/symmetry/offered';
import type { SymmetryId } from '../core/symmetry/settings';
import { symmetryChoices, type SymmetryItem } from './symmetryChoice';

export interface AlignOptions {
  /** Checkpoint A (the reference B is aligned to). */
  readonly reference?: vscode.Uri;
  readonly method?: AlignMethod;
  /** `--symmetry` (default permutation; `orthogonal`: GPT-2, Llama-family, Mixtral and ViT models; weight, activation, STE). */
  readonly symmetry?: SymmetryId;
  /** Output path; default: the `rebasin.outputNaming` pattern beside B. */
  readonly out?: vscode.Uri;
  /** Replace an earlier output without asking (true) or keep it and stop (false). */
  readonly replace?: boolean;
  /** Open the alignment panel afterwards (default true). */
  readonly openPanel?: boolean;
  /** Evaluation data for this run; `null`: none. Default: the choice remembered for B, else `rebasin.evaluationData`. */
  readonly data?: vscode.Uri | null;
  /** Write π(B) even when the equivalence check fails (the CLI's `--keep-on-mismatch`; "Write anyway"). */
  readonly keepOnMismatch?: boolean;
}

export interface AlignOutcome {
  /** The output the run was asked to write; `written` says whether the engine wrote it. */
  readonly out: string;
  /** From the engine's result: false after a failed equivalence check (`reason` says why). */
  readonly written: boolean;
  readonly reason?: string;
  readonly result: AlignResult;
  readonly curve?: BarrierCurve;
  /** Why there is no curve although evaluation data is set ("Loss curve cancelled."). */
  readonly curveNote?: string;
  readonly runId: string;
}

export function alignWith(deps: Deps) {
  return async (uri?: unknown, uris?: unknown, options?: AlignOptions): Promise<AlignOutcome | undefined> => {
    const automated = isOptions(options);
    const opts: AlignOptions = automated ? options : {};
    try {
      return await runAlign(deps, uri, uris, opts, automated);
    } catch (err) {
      reportFailure(deps.log, 'alignment', err);
      if (automated) throw err;
      return undefined;
    }
  };
}

function isOptions(x: unknown): x is AlignOptions {
  return typeof x === 'object' && x !== null && !(x instanceof vscode.Uri) && !Array.isArray(x);
}

async function runAlign(deps: Deps, uri: unknown, uris: unknown, opts: AlignOptions, automated: boolean): Promise<AlignOutcome | undefined> {
  if (!(await requireTrust('aligning checkpoints'))) return undefined;
  const b = targetUri(uri);
  if (!b) {
    void vscode.window.showWarningMessage('Re-Basin: right-click a .safetensors file (or open one in the inspector) to align it.');
    return undefined;
  }
  // Reads B's header first: a corrupt B fails here, naming the file, before anything is written.
  const bTensors = await readTensorList(b.fsPath);

  const settings = readSettings(b);
  const selected = otherSelected(b, uris);
  // B's own earlier output is B up to a permutation: never a useful reference.
  const ownOutput = vscode.Uri.file(alignedOutputPath(b.fsPath, settings.outputNaming));
  const a = opts.reference ?? (selected.length === 1 ? selected[0] : await pickCompatible(b, `Align ${checkpointName(b.fsPath)} with…`, [ownOutput]));
  if (!a) return undefined;
  if (a.fsPath === b.fsPath) throw new CommandError('SameCheckpoint', `${checkpointName(b.fsPath)}: cannot align a checkpoint with itself`, b.fsPath);
  // Same tensor names and shapes, from the headers (the picker checked this already; automation did not).
  const [checked] = await checkCandidates(b.fsPath, bTensors, [a]);
  if (checked?.problem) throw new CommandError('Incompatible', checked.problem, a.fsPath);

  // The data of this run: the given one, else B's remembered choice, else the setting; checked
  // against the model before anything is replaced. Interactively the method pick shows it and
  // lets the user change it for this run (remembered for B).
  const initial = await defaultData(deps.data, b, a, opts.data, settings.evaluationData);
  let choice: RunData = { path: initial.path, problem: initial.problem, source: initial.source };
  let method = opts.method;
  let symmetry = opts.symmetry;
  // Orthogonal maps only where the engine can fit them: both models of a family with an orthogonal layout, per their config.json.
  const [kindA, kindB] = [orthogonalModelKind(a.fsPath), orthogonalModelKind(b.fsPath)];
  const orthogonalKind = kindA === kindB ? kindA : undefined;
  while (!method) {
    const picked = await pickMethod(b, choice);
    if (!picked) return undefined;
    if (picked === 'data' || (methodInfo(picked).needsData && !choice.path)) {
      const data = await pickEvaluationData(deps.data, {
        model: b,
        evaluated: a,
        setting: settings.evaluationData,
        required: picked !== 'data',
        title: picked === 'data' ? 'Evaluation data for this run' : `${methodInfo(picked).label}: evaluation data`,
        problem: choice.problem,
      });
      if (data !== undefined) choice = { path: data ?? undefined, source: 'picked' };
      if (picked === 'data' || data === undefined) continue;
    }
    const choices = symmetryChoices(methodInfo(picked), orthogonalKind);
    if (choices.length > 0) {
      // Escape goes back to the methods.
      const chosen = await pickSymmetry(choices);
      if (!chosen) continue;
      symmetry = chosen;
    }
    method = picked;
  }
  const dataPath = choice.path;
  if (methodInfo(method).needsData && !dataPath) {
    throw new CommandError('NeedsData', `${method} matching needs evaluation data: ${choice.problem ?? 'pick a data set, or set `rebasin.evaluationData`'}`);
  }
  /** Why there is no loss curve although data was configured for this model. */
  const dataNote = !dataPath && choice.problem ? `No loss curve: ${choice.problem}.` : undefined;

  const orthogonal = symmetry === 'orthogonal';
  const out = opts.out?.fsPath ?? (orthogonal ? orthogonalOutputPath(b.fsPath, settings.outputNaming) : alignedOutputPath(b.fsPath, settings.outputNaming));
  if (!(await confirmOutput(out, [a.fsPath, b.fsPath], opts.replace))) return undefined;

  const data: DataOptions | undefined = dataPath ? evaluationDataOptions(dataPath, settings) : undefined;
  const [aName, bName] = checkpointNamePair(a.fsPath, b.fsPath);
  const label = `align ${bName} → ${aName} (${method}${orthogonal ? ', orthogonal maps' : ''})`;
  // A panel of this pair left open from an earlier run: cleared and marked running, so its old results do not read as this run's.
  const title = alignmentTitle(a.fsPath, b.fsPath);
  const markedRunning = opts.openPanel !== false && AlignmentPanel.openTitles().includes(title);
  if (markedRunning) AlignmentPanel.show(deps.extensionUri, deps.log, runningState(a.fsPath, b.fsPath, method, `aligning ${bName} to ${aName}`));
  // With evaluation data the notification's bar gives the alignment its first part, the curve the rest.
  const alignPhase = { start: 0, end: data ? 0.3 : 1 };
  const curvePhase = { start: alignPhase.end, end: 1 };
  const started = Date.now();
  let aligned: AlignResult | undefined;
  let write: AlignWrite | undefined;
  let curve: BarrierCurve | undefined;
  /** Why the panel has no loss curve although evaluation data is set. */
  let curveNote: string | undefined;
  let curveEnd: CurveEnd = 'none';
  /** The data the curve was computed on (shown under the chart). */
  let curveData: DataProvenance | undefined;
  /** The panel opened as soon as the file was written, while the curve is computed. */
  let livePanel: AlignmentPanel | undefined;
  try {
    await withCancellableProgress(`Re-Basin: aligning ${bName} to ${aName}`, async (report, signal) => {
      aligned = await timed(deps.log, label, () =>
        deps.engine.run(
          {
            kind: 'align',
            a: a.fsPath,
            b: b.fsPath,
            out,
            method,
            seed: settings.seed,
            maxIter: settings.maxIterations,
            memoryBudget: settings.memoryBudget,
            data,
            model: settings.modelConfig,
            includeMatrices: true,
            ...(orthogonal ? { symmetry } : {}),
            ...(opts.keepOnMismatch ? { keepOnMismatch: true } : {}),
          },
          { onProgress: (p) => report(p, alignPhase), signal },
        ),
      );
      write = alignWrite(aligned, out);
      if (!write.written) {
        // π(B) was not written: its loss curve would describe a model that computes something else than B.
        curveNote = notWrittenNote(write);
        return;
      }
      if (!data) {
        curveNote = dataNote;
        return;
      }
      const written = write;
      // The aligned file is written: from here a cancel or a failure only leaves the panel without its curve.
      report({ stage: 'loss curve', message: curveStartText(written) }, curvePhase);
      // The panel opens now with the heatmaps; the curve fills in as the points arrive.
      const total = 2 * settings.lambdaSteps;
      if (opts.openPanel !== false) {
        livePanel = AlignmentPanel.show(deps.extensionUri, deps.log, alignmentState(a.fsPath, b.fsPath, aligned, undefined, `Loss curve: 0 of ${total} points…`));
      }
      const points = new CurveAssembler(true);
      let lastDraw = 0;
      const onPoint = (p: CurvePoint): void => {
        if (!points.add(p) || !livePanel?.isOpen || signal.aborted) return;
        const now = Date.now();
        if (now - lastDraw < 250 && points.received < total) return;
        lastDraw = now;
        livePanel.updateCurve(points.curve(), `Loss curve: ${points.received} of ${total} points…`);
      };
      // A cancel takes a few seconds to reach the workers: say at once that it was heard, and that the points so far stay.
      signal.addEventListener('abort', () => livePanel?.isOpen && livePanel.updateCurve(points.curve(), 'Cancelling… the points computed so far are kept.'), { once: true });
      try {
        const barrier = await timed(deps.log, `barrier ${aName} ↔ ${bName}`, () =>
          deps.engine.run(
            {
              kind: 'barrier',
              a: a.fsPath,
              b: b.fsPath,
              data,
              model: settings.modelConfig,
              steps: settings.lambdaSteps,
              align: true,
              // The curve of the alignment just made (the file written), whatever its method; orthogonal
              // maps are no permutations: the written B' itself, from A' (the engine reads it from B''s metadata).
              ...(orthogonal ? { alignedCheckpoint: written.out } : { perms: aligned!.perms }),
              method,
              seed: settings.seed,
              maxIter: settings.maxIterations,
              resetBatchNorm: settings.resetBatchNorm,
              ...(settings.memoryBudget !== undefined ? { memoryBudget: settings.memoryBudget } : {}),
            },
            { onProgress: (p) => report(p, curvePhase), onPoint, signal },
          ),
        );
        curve = curveOf(barrier);
        curveEnd = 'done';
        curveData = dataProvenance(data.path, barrier);
      } catch (err) {
        if (isCancelled(err)) {
          // The points computed before the cancel are kept, marked as a partial curve.
          curve = points.curve();
          curveNote = curve ? `Loss curve cancelled after ${points.received} of ${total} points.` : 'Loss curve cancelled.';
          curveEnd = 'cancelled';
          deps.log.info(curveCancelledLogLine(label, written));
        } else {
          curveNote = `Loss curve failed: ${describeError(err)}`;
          curveEnd = { failed: describeError(err) };
          deps.log.warn(`${label}: loss curve failed: ${describeError(err)}`);
        }
      }
    });
  } catch (err) {
    // A panel marked running says the run ended without results, rather than "running" for ever.
    if (markedRunning && AlignmentPanel.openTitles().includes(title)) {
      const stopped = isCancelled(err) ? runningState(a.fsPath, b.fsPath, method, '', 'cancelled') : runningState(a.fsPath, b.fsPath, method, describeError(err), 'failed');
      AlignmentPanel.show(deps.extensionUri, deps.log, stopped);
    }
    // A cancel that reached the worker after it had written the file (the answer is then
    // "cancelled" whatever the worker did): say what is on disk.
    if (isCancelled(err) && !aligned && (await modifiedSince(out, started))) {
      throw new CommandError('Cancelled', cancelledText('alignment', out), out);
    }
    throw err;
  }
  const result = aligned;
  const outcome = write;
  if (!result || !outcome) return undefined;

  deps.log.info(alignLogLine(label, result, outcome));
  if (outcome.written === false && outcome.equivalence) deps.log.warn(`${label}: ${outcome.reason}`);
  const state = alignmentState(a.fsPath, b.fsPath, result, curve, curveNote, curveData);
  const run = await deps.history.add(
    {
      kind: 'align',
      a: aName,
      b: bName,
      aPath: a.fsPath,
      bPath: b.fsPath,
      // Only a file the engine wrote is linked, with its size and time to notice a later replacement.
      ...(outcome.written ? { outPath: outcome.out, out: checkpointName(outcome.out), outStamp: await fileStamp(outcome.out) } : {}),
      method,
      backend: result.backend,
      seconds: result.seconds,
      // A partial (cancelled or failed) curve stays in the panel only: its barrier is not the run's.
      barrier: curveNote ? undefined : curve?.barrier,
      curve: curveNote ? undefined : curve,
      note: curveNote ?? (outcome.written ? keptNote(outcome) : undefined),
      folder: folderLabel(b),
      seed: settings.seed,
    },
    state,
  );
  if (livePanel?.isOpen) livePanel.updateCurve(curve, curveNote, curveData);
  else if (opts.openPanel !== false && !livePanel) AlignmentPanel.show(deps.extensionUri, deps.log, state);
  const moved = result.groups.reduce((s, g) => s + g.moved, 0);
  const summary = alignSummary({ a: aName, b: bName }, moved, outcome, curveEnd);
  const actions = outcome.written ? ['Open panel', 'Reveal in Explorer'] : ['Write anyway', 'Open panel', 'Show Log'];
  const shown = summary.warning ? vscode.window.showWarningMessage(summary.text, ...actions) : vscode.window.showInformationMessage(summary.text, ...actions);
  void shown.then(async (choice) => {
    if (choice === 'Open panel') AlignmentPanel.show(deps.extensionUri, deps.log, state);
    if (choice === 'Show Log') deps.log.show();
    if (choice === 'Reveal in Explorer' && outcome.written) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(outcome.out));
    if (choice === 'Write anyway') {
      const again: AlignOptions = { reference: a, method, ...(orthogonal ? { symmetry } : {}), out: vscode.Uri.file(out), keepOnMismatch: true, data: dataPath ? vscode.Uri.file(dataPath) : null };
      await vscode.commands.executeCommand('rebasin.alignWith', b, undefined, again);
    }
  });
  return {
    out,
    written: outcome.written,
    ...(outcome.written ? {} : { reason: outcome.reason }),
    result,
    curve,
    curveNote,
    runId: run.id,
  };
}

/** True when `file` exists and was modified at or after `sinceMs` (written during this run). */
async function modifiedSince(file: string, sinceMs: number): Promise<boolean> {
  try {
    const stat = await vscode.workspace.fs.stat(vscode.Uri.file(file));
    return stat.mtime >= sinceMs - 1000;
  } catch {
    return false;
  }
}

/** The data of a run as the method pick shows it. */
interface RunData {
  readonly path?: string;
  readonly source?: 'remembered' | 'setting' | 'given' | 'picked';
  /** Why the configured data is not used. */
  readonly problem?: string;
}

interface MethodItem extends vscode.QuickPickItem {
  readonly method?: AlignMethod | 'data';
}

/**
 * The alignment methods, and below them the evaluation data of this run (used for the loss
 * curve, and by the methods that run the models on data); picking that row changes it.
 */
async function pickMethod(b: vscode.Uri, data: RunData): Promise<AlignMethod | 'data' | undefined> {
  const name = checkpointName(b.fsPath);
  const items: MethodItem[] = METHODS.map((m) => ({
    label: m.label,
    description: m.needsData && !data.path ? `${m.description} · needs evaluation data (picked next)` : m.description,
    detail: m.detail,
    method: m.id,
  }));
  const from = data.source === 'remembered' ? `used last time for ${name}` : data.source === 'setting' ? 'the rebasin.evaluationData setting' : 'chosen for this run';
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push(
    data.path
      ? { label: `$(database) Evaluation data: ${path.basename(data.path)}`, description: from, detail: 'For the loss curve after aligning. Pick to change it for this run.', method: 'data' }
      : data.problem
        ? { label: '$(warning) Evaluation data: none that suits this model', description: data.problem, detail: 'No loss curve. Pick to choose data for this run.', method: 'data' }
        : { label: '$(database) Evaluation data: none', description: 'no loss curve', detail: 'Pick to choose data for this run.', method: 'data' },
  );
  const picked = await vscode.window.showQuickPick(items, { title: 'Alignment method', placeHolder: 'How should units be matched?', ignoreFocusOut: true });
  return picked?.method;
}

interface SymmetryPickItem extends vscode.QuickPickItem {
  readonly symmetry: SymmetryId;
}

/** Permutations or orthogonal maps (asked only where both are possible: symmetryChoice.ts). */
async function pickSymmetry(choices: readonly SymmetryItem[]): Promise<SymmetryId | undefined> {
  const items: SymmetryPickItem[] = choices.map((c) => ({ label: c.label, description: c.description, detail: c.detail, symmetry: c.symmetry }));
  const picked = await vscode.window.showQuickPick(items, { title: 'Symmetry', placeHolder: 'What may B be transformed by?', ignoreFocusOut: true });
  return picked?.symmetry;
}
