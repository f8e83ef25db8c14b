/**
 * The command table (rust-analyzer's `createCommands` shape): one factory per command id,
 * each closing over the shared services. Ids and titles are declared in package.json.
 */
import * as vscode from 'vscode';
import { alignWith } from './alignCommand';
import { AlignmentPanel } from './alignmentPanel';
import { computeBarrier } from './barrierCommand';
import { convertCheckpoint } from './convertCommand';
import { compareWith } from './diffCommand';
import { DiffPanel } from './diffPanel';
import { pickOne } from './checkpointPicker';
import type { Deps } from './deps';
import { BACKEND_WORDS } from './engineHost';
import { InspectorEditorProvider } from './inspectorEditor';
import { mergeCheckpoints } from './mergeCommand';
import { setUpNativeBackend } from './nativeBackend';
import type { RunRecord } from './runHistory';
import { fileStamp, reportFailure, targetUri } from './runSupport';

type Handler = (...args: unknown[]) => unknown;

const COMMANDS: Readonly<Record<string, (deps: Deps) => Handler>> = {
  'rebasin.alignWith': (d) => alignWith(d) as Handler,
  'rebasin.mergeCheckpoints': (d) => mergeCheckpoints(d) as Handler,
  'rebasin.computeBarrier': (d) => computeBarrier(d, false) as Handler,
  'rebasin.computeBarrierWith': (d) => computeBarrier(d, true) as Handler,
  'rebasin.inspectCheckpoint': () => inspectCheckpoint as Handler,
  'rebasin.showBackend': (d) => showBackend(d) as Handler,
  'rebasin.clearRunHistory': (d) => clearRunHistory(d) as Handler,
  'rebasin.convertToSafetensors': (d) => convertCheckpoint(d) as Handler,
  'rebasin.compareWith': (d) => compareWith(d) as Handler,
  'rebasin.setUpNativeBackend': (d) => setUpNativeBackend(d) as Handler,
};

export function registerCommands(deps: Deps): vscode.Disposable {
  return vscode.Disposable.from(...Object.entries(COMMANDS).map(([id, make]) => vscode.commands.registerCommand(id, make(deps))));
}

/** Opens a checkpoint in the inspector: the clicked file, the active one, or a picked one. */
async function inspectCheckpoint(uri?: unknown): Promise<void> {
  const target = targetUri(uri) ?? (await pickOne('Inspect checkpoint', 'Pick a checkpoint to inspect'));
  if (!target) return;
  const viewType = InspectorEditorProvider.viewTypeFor(target.path);
  await vscode.commands.executeCommand('vscode.openWith', target, viewType);
}

/** Starts the worker if needed and says which tfjs backend it runs on. */
function showBackend(deps: Deps) {
  return async (): Promise<string | undefined> => {
    try {
      const backend = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'Re-Basin: starting the compute worker' },
        () => deps.engine.ensureBackend(),
      );
      deps.log.info(`compute backend: ${backend}`);
      const native = backend === 'tensorflow' ? [] : ['Set up native backend'];
      void vscode.window.showInformationMessage(`Re-Basin computes on ${BACKEND_WORDS[backend]}.`, ...native).then(async (c) => {
        if (c) await vscode.commands.executeCommand('rebasin.setUpNativeBackend');
      });
      return backend;
    } catch (err) {
      reportFailure(deps.log, 'starting the compute worker', err);
      return undefined;
    }
  };
}

function clearRunHistory(deps: Deps) {
  return async (options?: unknown): Promise<boolean> => {
    const confirmed =
      (typeof options === 'object' && options !== null && (options as { skipConfirmation?: unknown }).skipConfirmation === true) ||
      (await vscode.window.showWarningMessage(
        `Delete all ${deps.history.list().length} Re-Basin runs of this workspace from the history? Checkpoint files are kept.`,
        { modal: true },
        'Clear',
      )) === 'Clear';
    if (!confirmed) return false;
    await deps.history.clear();
    deps.log.info('run history cleared');
    return true;
  };
}

/** Reopens a stored run: its alignment/barrier panel, its diff view, or the merged checkpoint in the inspector. */
export async function reopenRun(deps: Deps, run: RunRecord): Promise<void> {
  if (run.interrupted) {
    // Nothing was kept of a job a window reload stopped: say so instead of "results are gone".
    void vscode.window.showInformationMessage(`Re-Basin: ${run.note ?? 'this run was interrupted by a window reload'} Run it again to see its results.`);
    return;
  }
  const changed = await outputChange(deps, run);
  const replaced = changed !== undefined;
  const fate = changed === 'missing' ? 'is no longer there' : 'was replaced by a later run';
  if (run.kind === 'merge') {
    if (replaced) {
      void vscode.window.showWarningMessage(`Re-Basin: ${run.out ?? 'the output'} of this merge ${fate}; it no longer holds this merge.`);
      return;
    }
    if (run.outPath) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(run.outPath), InspectorEditorProvider.viewType);
    return;
  }
  if (run.kind === 'diff') {
    const diff = await deps.history.loadDiffPanel(run.id);
    if (diff) DiffPanel.show(deps, diff);
    else void vscode.window.showWarningMessage(`Re-Basin: the stored results of diff ${run.a} vs ${run.b} are gone.`);
    return;
  }
  const state = await deps.history.loadPanel(run.id);
  if (state) {
    // The stored panel keeps its results but no longer links a file that now holds another run's output.
    const { out: _out, ...rest } = state;
    AlignmentPanel.show(deps.extensionUri, deps.log, replaced ? rest : state);
    if (replaced) void vscode.window.showInformationMessage(`Re-Basin: ${run.out ?? 'the output'} of this run ${fate}; the panel shows this run's results without linking it.`);
    return;
  }
  void vscode.window.showWarningMessage(`Re-Basin: the stored results of ${run.kind} ${run.b} → ${run.a} are gone.`);
}

/**
 * How the run's output changed since the run: `replaced` when a later run wrote it or the file
 * there is not the one the run wrote (size or mtime differ), `missing` when it is gone.
 */
async function outputChange(deps: Deps, run: RunRecord): Promise<'replaced' | 'missing' | undefined> {
  if (!run.outPath) return undefined;
  if (run.replaced) return 'replaced';
  if (!run.outStamp) return undefined;
  const now = await fileStamp(run.outPath);
  if (!now) return 'missing';
  if (now.size === run.outStamp.size && now.mtime === run.outStamp.mtime) return undefined;
  await deps.history.markReplaced(run.id);
  return 'replaced';
}
