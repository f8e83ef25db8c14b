/**
 * The alignment panel: one heatmap per permutation group (before/after), the loss curve along the
 * interpolation path when evaluation data is configured (else the weight-distance plot), and the
 * run's numbers. The webview receives its state by message; every message it sends back is
 * validated, and "open file" only opens paths the extension put in that state itself.
 */
import * as vscode from 'vscode';
import type { AlignmentState, BarrierCurve, DataProvenance, ToAlignment } from '../../webview/protocol';
import { Disposable } from './dispose';
import type { Log } from './log';
import { errorMessage } from './log';
import type { Deps } from './deps';
import { asFromAlignment } from './messageGuards';
import { afterReload, persistedState, persistedTitle } from './panelRestore';
import { saveExport } from './webviewExport';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class AlignmentPanel extends Disposable {
  static readonly viewType = 'rebasin.alignment';
  private static readonly open = new Set<AlignmentPanel>();
  private static readonly opened = new vscode.EventEmitter<AlignmentPanel>();
  /** Fires when a panel is created (tests and automation use it). */
  static readonly onDidOpen = AlignmentPanel.opened.event;

  private ready = false;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private state: AlignmentState,
    private readonly log: Log,
  ) {
    super();
    AlignmentPanel.open.add(this);
    this.register(panel.onDidDispose(() => this.dispose()));
    this.register(panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)));
  }

  /** Titles of the open panels, for tests. */
  static openTitles(): string[] {
    return [...AlignmentPanel.open].map((p) => p.panel.title);
  }

  /** Opens a panel showing `state`, or refreshes the open one with the same title. */
  static show(extensionUri: vscode.Uri, log: Log, state: AlignmentState): AlignmentPanel {
    for (const existing of AlignmentPanel.open) {
      if (existing.panel.title === state.title) {
        existing.update(state);
        existing.panel.reveal(undefined, false);
        return existing;
      }
    }
    const panel = vscode.window.createWebviewPanel(AlignmentPanel.viewType, state.title, vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      // The panel is re-initialised from its state on `ready`, so no retained context is needed.
      retainContextWhenHidden: false,
    });
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icons', 'rebasin.svg');
    const created = new AlignmentPanel(panel, state, log);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'alignment', state.title);
    AlignmentPanel.opened.fire(created);
    return created;
  }

  /**
   * Brings back the panels open before a window reload: from the state their webview kept, else
   * from the run history (a state too large for the webview to keep), else says it cannot.
   */
  static registerSerializer(deps: Pick<Deps, 'extensionUri' | 'log' | 'history'>): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(AlignmentPanel.viewType, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, saved: unknown) => {
        await AlignmentPanel.restore(panel, saved, deps);
      },
    });
  }

  /** What the serializer does with a panel VS Code recreated and the state its webview kept. */
  static async restore(panel: vscode.WebviewPanel, saved: unknown, deps: Pick<Deps, 'extensionUri' | 'log' | 'history'>): Promise<AlignmentPanel | undefined> {
    const title = persistedTitle(saved) ?? panel.title;
    const state = persistedState(saved) ?? (await AlignmentPanel.storedState(deps, title));
    if (!state) {
      panel.dispose();
      void vscode.window.showInformationMessage(`Re-Basin: "${title}" could not be restored after the reload; reopen its run from the Barrier charts view.`);
      return undefined;
    }
    return AlignmentPanel.revive(panel, deps.extensionUri, deps.log, afterReload(state));
  }

  /** The newest stored run panel with this title (the last few runs only). */
  private static async storedState(deps: Pick<Deps, 'history'>, title: string): Promise<AlignmentState | undefined> {
    for (const run of deps.history.list().filter((r) => r.hasPanel).slice(0, 20)) {
      const state = await deps.history.loadPanel(run.id);
      if (state?.title === title) return state;
    }
    return undefined;
  }

  private static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: Log, state: AlignmentState): AlignmentPanel {
    panel.title = state.title;
    panel.webview.options = webviewOptions(extensionUri);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icons', 'rebasin.svg');
    const revived = new AlignmentPanel(panel, state, log);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'alignment', state.title);
    AlignmentPanel.opened.fire(revived);
    return revived;
  }

  static disposeAll(): void {
    for (const p of [...AlignmentPanel.open]) p.panel.dispose();
  }

  /** False once the user closed the panel. */
  get isOpen(): boolean {
    return AlignmentPanel.open.has(this);
  }

  get title(): string {
    return this.panel.title;
  }

  update(state: AlignmentState): void {
    this.state = state;
    if (this.ready) this.post({ type: 'update', state });
  }

  /**
   * The loss curve arrived (or was given up, with `curveNote`) after the panel opened with the
   * heatmaps: the webview redraws only its curve section. While the curve is computed, `curve`
   * holds the points so far and `curveNote` says how many.
   */
  updateCurve(curve: BarrierCurve | undefined, curveNote?: string, data?: DataProvenance): void {
    const { curve: _c, curveNote: _n, data: _d, ...rest } = this.state;
    this.state = { ...rest, ...(curve ? { curve } : {}), ...(curveNote ? { curveNote } : {}), ...(data ? { data } : {}) };
    if (this.ready) this.post({ type: 'curve', curve, curveNote, ...(data ? { data } : {}) });
  }

  private post(message: ToAlignment): void {
    void this.panel.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message = asFromAlignment(raw);
    if (!message) {
      this.log.warn(`alignment panel: dropped an invalid message`);
      return;
    }
    try {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          this.post({ type: 'init', state: this.state });
          break;
        case 'openFile': {
          const ref = message.which === 'a' ? this.state.a : message.which === 'b' ? this.state.b : message.which === 'aFolded' ? this.state.orthogonal?.referenceFolded : this.state.out;
          if (ref) await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(ref.path));
          break;
        }
        case 'exportCsv':
        case 'exportPng':
          await saveExport(message, this.state.out?.path ?? this.state.b.path, this.log);
          break;
      }
    } catch (err) {
      void vscode.window.showErrorMessage(`Re-Basin: ${errorMessage(err)}`);
    }
  }

  override dispose(): void {
    AlignmentPanel.open.delete(this);
    super.dispose();
    this.panel.dispose();
  }
}
