/**
 * Activation only wires things together: build the shared services, then register each part.
 * Nothing here starts the compute worker; it starts on the first command that needs it.
 */
import * as vscode from 'vscode';
import { AlignmentPanel } from './alignmentPanel';
import type { RebasinApi } from './api';
import { BarrierViewProvider } from './barrierView';
import { DiffPanel } from './diffPanel';
import { registerCommands, reopenRun } from './commands';
import { DataChoices } from './dataChoice';
import type { Deps } from './deps';
import { EngineHost } from './engineHost';
import { InspectorEditorProvider } from './inspectorEditor';
import { JobJournal } from './jobJournal';
import { createLog, errorMessage } from './log';
import { RunHistory } from './runHistory';

export async function activate(context: vscode.ExtensionContext): Promise<RebasinApi> {
  try {
    const log = createLog();
    context.subscriptions.push(log);
    const historyDir = context.storageUri ?? context.globalStorageUri;
    const journal = new JobJournal(historyDir, log);
    const engine = new EngineHost(context.extensionUri, log, journal);
    context.subscriptions.push(engine);
    const history = await RunHistory.create(historyDir, log);
    context.subscriptions.push(history);
    // Jobs a window reload stopped: recorded as such, not lost without a word.
    await journal.recover(history);
    const deps: Deps = {
      extensionUri: context.extensionUri,
      globalStorageUri: context.globalStorageUri,
      log,
      engine,
      history,
      data: new DataChoices(context.workspaceState),
    };

    context.subscriptions.push(registerCommands(deps));
    context.subscriptions.push(InspectorEditorProvider.register(context, deps));
    context.subscriptions.push(BarrierViewProvider.register(context, { history, log, reopen: (run) => reopenRun(deps, run) }));
    context.subscriptions.push({ dispose: () => AlignmentPanel.disposeAll() });
    // Alignment/barrier panels open before a window reload come back.
    context.subscriptions.push(AlignmentPanel.registerSerializer(deps));
    context.subscriptions.push({ dispose: () => DiffPanel.disposeAll() });

    log.info(`Re-Basin ${String(context.extension.packageJSON.version)} activated (compute worker starts on first use)`);
    return {
      runs: () => history.list(),
      openPanels: () => AlignmentPanel.openTitles(),
      engineStarted: () => engine.started,
      historyLocation: () => historyDir,
      onDidShowInspector: InspectorEditorProvider.onDidShow,
      onDidChangeRuns: history.onDidChange,
      restorePanel: async (saved) => {
        const panel = vscode.window.createWebviewPanel(AlignmentPanel.viewType, 'Re-Basin', vscode.ViewColumn.Active, {});
        return (await AlignmentPanel.restore(panel, saved, deps))?.title;
      },
      recoverInterruptedJobs: () => journal.recover(history),
    };
  } catch (err) {
    // VS Code does not tell the user when activation fails: say it, then let VS Code record it.
    void vscode.window.showErrorMessage(`Re-Basin could not start: ${errorMessage(err)}`);
    throw err;
  }
}

export function deactivate(): void {
  // Everything, the compute worker included, is released through context.subscriptions.
}
