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
import { evaluationDataOptions } from './barrierCommand';
import type { AlignMethod, AlignResult, BarrierCurve, DataOptions } from '../engine/protocol';
import { AlignmentPanel } from './alignmentPanel';
import { checkCandidates, pickCompatible, readTensorList } from './checkpointPicker';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { timed } from './log';
import { alignmentState, curveOf } from './panelState';
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
  const { result, curve } = await withCancellableProgress(`Re-Basin: aligning ${path.basename(b.fsPath)} to ${path.basename(a.fsPath)}`, async (report, signal) => {
    const result = await timed(deps.log, label, () =>
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
        { onProgress: report, signal },
      ),
    );
    let curve: BarrierCurve | undefined;
    if (data) {
      // With evaluation data the panel shows the loss along both paths (a barrier run).
      report({ stage: 'loss along the interpolation path' });
      // The aligned file is already written: a failing curve only leaves the panel without it.
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
            perms: result.perms,
            method,
            seed: settings.seed,
            maxIter: settings.maxIterations,
            resetBatchNorm: settings.resetBatchNorm,
          },
          { onProgress: report, signal },
        ),
      ).catch((err: unknown) => {
        if (isCancelled(err)) throw err;
        void vscode.window.showWarningMessage(`Re-Basin: aligned, but the loss curve failed: ${describeError(err)}`);
        return undefined;
      });
      curve = barrier ? curveOf(barrier) : undefined;
    }
    return { result, curve };
  });

  deps.log.info(
    `${label}: ${result.iterations} sweeps, objective ${formatNumber(result.objectiveBefore)} → ${formatNumber(result.objectiveAfter)} on ${result.backend}; wrote ${out}`,
  );
  const state = alignmentState(a.fsPath, b.fsPath, { ...result, out: result.out ?? out }, curve);
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
      barrier: curve?.barrier,
      curve,
    },
    state,
  );
  if (opts.openPanel !== false) AlignmentPanel.show(deps.extensionUri, deps.log, state);
  const moved = result.groups.reduce((s, g) => s + g.moved, 0);
  void vscode.window
    .showInformationMessage(
      `Re-Basin: aligned ${path.basename(b.fsPath)} to ${path.basename(a.fsPath)} (${moved} units moved) and wrote ${path.basename(out)}.`,
      'Open panel',
      'Reveal in Explorer',
    )
    .then(async (choice) => {
      if (choice === 'Open panel') AlignmentPanel.show(deps.extensionUri, deps.log, state);
      if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
    });
  return { out, result, curve, runId: run.id };
}

interface MethodItem extends vscode.QuickPickItem {
  readonly method?: AlignMethod;
}

/** Weight matching always; activation matching and STE only with evaluation data configured. */
async function pickMethod(hasData: boolean): Promise<AlignMethod | undefined> {
  const needsData = 'needs evaluation data: set rebasin.evaluationData';
  const items: MethodItem[] = [
    { label: 'Weight matching', description: 'no data needed', detail: 'Match units by the similarity of their weights (paper §3.2).', method: 'weight' },
    hasData
      ? { label: 'Activation matching', description: 'uses evaluation data', detail: 'Match units by the correlation of their activations (paper §3.1).', method: 'activation' }
      : { label: '$(circle-slash) Activation matching', description: needsData },
    hasData
      ? { label: 'Straight-through estimator', description: 'uses evaluation data, slowest', detail: 'Learn the permutation that minimises the midpoint loss (paper §3.3).', method: 'ste' }
      : { label: '$(circle-slash) Straight-through estimator', description: needsData },
  ];
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
