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
import { METHODS } from '../core/methods';
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
import { alignmentState, curveOf, dataProvenance } from './panelState';
import { isCancelled } from '../engine/errors';
import { confirmOutput, describeError, formatNumber, otherSelected, reportFailure, targetUri, withCancellableProgress } from './runSupport';
import { alignedOutputPath, readSettings } from './settings';
import { requireTrust } from './workspaceTrust';

export interface AlignOptions {
  /** Checkpoint A (the reference B is aligned to). */
  readonly reference?: vscode.Uri;
  readonly method?: AlignMethod;
  /** Output path; default: the `rebasin.outputNaming` pattern beside B. */
  readonly out?: vscode.Uri;
  /** Replace an earlier output without asking (true) or keep it and stop (false). */
  readonly replace?: boolean;
  /** Open the alignment panel afterwards (default true). */
  readonly openPanel?: boolean;
}

export interface AlignOutcome {
  readonly out: string;
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
      return await runAlign(deps, uri, uris, opts);
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

async function runAlign(deps: Deps, uri: unknown, uris: unknown, opts: AlignOptions): Promise<AlignOutcome | undefined> {
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
  const a = opts.reference ?? (selected.length === 1 ? selected[0] : await pickCompatible(b, `Align ${path.basename(b.fsPath)} with…`, [ownOutput]));
  if (!a) return undefined;
  if (a.fsPath === b.fsPath) throw new CommandError('SameCheckpoint', `${path.basename(b.fsPath)}: cannot align a checkpoint with itself`, b.fsPath);
  // Same tensor names and shapes, from the headers (the picker checked this already; automation did not).
  const [checked] = await checkCandidates(b.fsPath, bTensors, [a]);
  if (checked?.problem) throw new CommandError('Incompatible', checked.problem, a.fsPath);

  const method = opts.method ?? (await pickMethod(settings.evaluationData !== undefined));
  if (!method) return undefined;
  if (method !== 'weight' && !settings.evaluationData) {
    throw new CommandError('NeedsData', `${method} matching needs evaluation data: set \`rebasin.evaluationData\``);
  }

  const out = opts.out?.fsPath ?? alignedOutputPath(b.fsPath, settings.outputNaming);
  if (!(await confirmOutput(out, [a.fsPath, b.fsPath], opts.replace))) return undefined;

  const data: DataOptions | undefined = settings.evaluationData ? evaluationDataOptions(settings.evaluationData, settings) : undefined;
  const label = `align ${path.basename(b.fsPath)} → ${path.basename(a.fsPath)} (${method})`;
  const outName = path.basename(out);
  // With evaluation data the notification's bar gives the alignment its first part, the curve the rest.
  const alignPhase = { start: 0, end: data ? 0.3 : 1 };
  const curvePhase = { start: alignPhase.end, end: 1 };
  const started = Date.now();
  let aligned: AlignResult | undefined;
  let curve: BarrierCurve | undefined;
  /** Why the panel has no loss curve although evaluation data is set. */
  let curveNote: string | undefined;
  /** The data the curve was computed on (shown under the chart). */
  let curveData: DataProvenance | undefined;
  /** The panel opened as soon as the file was written, while the curve is computed. */
  let livePanel: AlignmentPanel | undefined;
  try {
    await withCancellableProgress(`Re-Basin: aligning ${path.basename(b.fsPath)} to ${path.basename(a.fsPath)}`, async (report, signal) => {
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
          },
          { onProgress: (p) => report(p, alignPhase), signal },
        ),
      );
      if (!data) return;
      // The aligned file is written: from here a cancel or a failure only leaves the panel without its curve.
      report({ stage: 'loss curve', message: `${outName} written; computing the loss curve` }, curvePhase);
      // The panel opens now with the heatmaps; the curve fills in as the points arrive.
      const total = 2 * settings.lambdaSteps;
      if (opts.openPanel !== false) {
        livePanel = AlignmentPanel.show(deps.extensionUri, deps.log, alignmentState(a.fsPath, b.fsPath, { ...aligned, out: aligned.out ?? out }, undefined, `Loss curve: 0 of ${total} points…`));
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
        const barrier = await timed(deps.log, `barrier ${path.basename(a.fsPath)} ↔ ${path.basename(b.fsPath)}`, () =>
          deps.engine.run(
            {
              kind: 'barrier',
              a: a.fsPath,
              b: b.fsPath,
              data,
              model: settings.modelConfig,
              steps: settings.lambdaSteps,
              align: true,
              // The curve of the alignment just made (the file written), whatever its method.
              perms: aligned!.perms,
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
        curveData = dataProvenance(data.path, barrier);
      } catch (err) {
        if (isCancelled(err)) {
          // The points computed before the cancel are kept, marked as a partial curve.
          curve = points.curve();
          curveNote = curve ? `Loss curve cancelled after ${points.received} of ${total} points.` : 'Loss curve cancelled.';
          deps.log.info(`${label}: ${outName} written; loss curve cancelled`);
        } else {
          curveNote = `Loss curve failed: ${describeError(err)}`;
          deps.log.warn(`${label}: loss curve failed: ${describeError(err)}`);
        }
      }
    });
  } catch (err) {
    // A cancel that reached the worker after it had written the file (the answer is then
    // "cancelled" whatever the worker did): say what is on disk.
    if (isCancelled(err) && !aligned && (await writtenSince(out, started))) {
      throw new CommandError('Cancelled', `alignment cancelled after ${outName} was written`, out);
    }
    throw err;
  }
  const result = aligned;
  if (!result) return undefined;

  deps.log.info(
    `${label}: ${result.iterations} sweeps, objective ${formatNumber(result.objectiveBefore)} → ${formatNumber(result.objectiveAfter)} on ${result.backend}; wrote ${out}`,
  );
  const state = alignmentState(a.fsPath, b.fsPath, { ...result, out: result.out ?? out }, curve, curveNote, curveData);
  const run = await deps.history.add(
    {
      kind: 'align',
      a: path.basename(a.fsPath),
      b: path.basename(b.fsPath),
      aPath: a.fsPath,
      bPath: b.fsPath,
      outPath: out,
      out: path.basename(out),
      method,
      backend: result.backend,
      seconds: result.seconds,
      // A partial (cancelled) curve stays in the panel only: its barrier is not the run's.
      barrier: curveNote ? undefined : curve?.barrier,
      curve: curveNote ? undefined : curve,
      note: curveNote,
      folder: folderLabel(b),
      seed: settings.seed,
    },
    state,
  );
  if (livePanel?.isOpen) livePanel.updateCurve(curve, curveNote, curveData);
  else if (opts.openPanel !== false && !livePanel) AlignmentPanel.show(deps.extensionUri, deps.log, state);
  const moved = result.groups.reduce((s, g) => s + g.moved, 0);
  const cancelled = curveNote?.startsWith('Loss curve cancelled') === true;
  const failed = curveNote !== undefined && !cancelled;
  const summary = cancelled
    ? `Re-Basin: ${outName} written; loss curve cancelled.`
    : failed
      ? `Re-Basin: aligned and wrote ${outName}, but the loss curve failed: ${(curveNote ?? '').replace(/^Loss curve failed: /, '')}`
      : `Re-Basin: aligned ${path.basename(b.fsPath)} to ${path.basename(a.fsPath)} (${moved} units moved) and wrote ${outName}.`;
  const shown = failed
    ? vscode.window.showWarningMessage(summary, 'Open panel', 'Reveal in Explorer')
    : vscode.window.showInformationMessage(summary, 'Open panel', 'Reveal in Explorer');
  void shown.then(async (choice) => {
    if (choice === 'Open panel') AlignmentPanel.show(deps.extensionUri, deps.log, state);
    if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
  });
  return { out, result, curve, curveNote, runId: run.id };
}

/** True when `file` exists and was modified at or after `sinceMs` (written by this run). */
async function writtenSince(file: string, sinceMs: number): Promise<boolean> {
  try {
    const stat = await vscode.workspace.fs.stat(vscode.Uri.file(file));
    return stat.mtime >= sinceMs - 1000;
  } catch {
    return false;
  }
}

interface MethodItem extends vscode.QuickPickItem {
  readonly method?: AlignMethod;
}

/** Weight matching always; activation matching and STE only with evaluation data configured. */
async function pickMethod(hasData: boolean): Promise<AlignMethod | undefined> {
  const needsData = 'needs evaluation data: set rebasin.evaluationData';
  const items: MethodItem[] = METHODS.map((m) =>
    !m.needsData || hasData
      ? { label: m.label, description: m.description, detail: m.detail, method: m.id }
      : { label: `$(circle-slash) ${m.label}`, description: needsData },
  );
  for (;;) {
    const picked = await vscode.window.showQuickPick(items, { title: 'Alignment method', placeHolder: 'How should units be matched?', ignoreFocusOut: true });
    if (!picked) return undefined;
    if (picked.method) return picked.method;
    const choice = await vscode.window.showInformationMessage(
      'Re-Basin: activation matching and the straight-through estimator run the models on data. Set `rebasin.evaluationData` to a data set first.',
      'Open Settings',
      'Choose another method',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'rebasin.evaluationData');
      return undefined;
    }
    if (choice !== 'Choose another method') return undefined;
  }
}
