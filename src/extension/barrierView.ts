/**
 * The "Barrier charts" side view (activity-bar container "Re-Basin"): every run of the workspace
 * with its barrier chart. Clicking a run reopens its panel from the stored results; runs can be
 * deleted one by one or all at once. The view re-sends the list when it becomes visible instead
 * of keeping its context alive while hidden.
 */
import * as vscode from 'vscode';
import type { BarriersState, RunSummary, ToBarriers } from '../../webview/protocol';
import { Disposable } from './dispose';
import type { Log } from './log';
import { errorMessage } from './log';
import { asFromBarriers } from './messageGuards';
import type { RunHistory, RunRecord } from './runHistory';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class BarrierViewProvider extends Disposable implements vscode.WebviewViewProvider {
  static readonly viewType = 'rebasin.barriers';
  private view: vscode.WebviewView | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly history: RunHistory,
    private readonly log: Log,
    private readonly reopen: (run: RunRecord) => Promise<void>,
  ) {
    super();
    this.register(history.onDidChange(() => this.push('update')));
    // Trusting the folder changes the empty state's advice.
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.push('update')));
  }

  static register(
    context: vscode.ExtensionContext,
    deps: { history: RunHistory; log: Log; reopen: (run: RunRecord) => Promise<void> },
  ): vscode.Disposable {
    const provider = new BarrierViewProvider(context.extensionUri, deps.history, deps.log, deps.reopen);
    const registration = vscode.window.registerWebviewViewProvider(BarrierViewProvider.viewType, provider);
    return vscode.Disposable.from(registration, provider);
  }

  /** True while the view's webview exists and has answered `ready` (tests). */
  get isReady(): boolean {
    return this.ready && this.view !== undefined;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'barriers', 'Barrier charts');
    const subs = [
      view.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      view.onDidChangeVisibility(() => {
        if (view.visible) this.push('update');
      }),
    ];
    view.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      if (this.view === view) {
        this.view = undefined;
        this.ready = false;
      }
    });
  }

  private state(): BarriersState {
    return { runs: this.history.list().map(toSummary), trusted: vscode.workspace.isTrusted };
  }

  private push(type: 'init' | 'update'): void {
    if (!this.view || !this.ready) return;
    const message: ToBarriers = { type, state: this.state() };
    void this.view.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message = asFromBarriers(raw);
    if (!message) {
      this.log.warn('barrier view: dropped an invalid message');
      return;
    }
    try {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          this.push('init');
          break;
        case 'openRun': {
          const run = this.history.get(message.id);
          if (run) await this.reopen(run);
          break;
        }
        case 'deleteRun':
          // Only ids the history knows are acted on.
          if (this.history.get(message.id)) await this.history.delete(message.id);
          break;
        case 'clearRuns':
          await vscode.commands.executeCommand('rebasin.clearRunHistory');
          break;
        case 'manageTrust':
          await vscode.commands.executeCommand('workbench.trust.manage');
          break;
      }
    } catch (err) {
      void vscode.window.showErrorMessage(`Re-Basin: ${errorMessage(err)}`);
    }
  }
}

/** What the webview gets: the summary fields only, never the absolute paths. */
function toSummary(r: RunRecord): RunSummary {
  return {
    id: r.id,
    kind: r.kind,
    a: r.a,
    b: r.b,
    others: r.others,
    method: r.method,
    createdAt: r.createdAt,
    backend: r.backend,
    seconds: r.seconds,
    barrier: r.barrier,
    curve: r.curve,
    out: r.out && r.replaced ? `${r.out} (replaced by a later run)` : r.out,
    note: r.note,
    folder: r.folder,
    seed: r.seed,
    ...(r.interrupted ? { interrupted: true } : {}),
    ...(r.change ? { change: r.change } : {}),
  };
}
