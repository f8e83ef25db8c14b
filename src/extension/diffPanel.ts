/**
 * The diff view panel ("Compare with…"): shows a diff result (naive, and after alignment when it
 * was asked for), runs "Scan for problems" on both checkpoints and draws a chosen tensor
 * (`diffTensor` request) when the view asks, and saves the
 * view's CSV / PNG exports where the user says. Every message from the webview is validated.
 */
import * as vscode from 'vscode';
import type { DiffState, ToDiff } from '../../webview/protocol';
import type { Deps } from './deps';
import { Disposable } from './dispose';
import { errorMessage } from './log';
import { asFromDiff } from './messageGuards';
import { reportFailure, withCancellableProgress } from './runSupport';
import { saveExport } from './webviewExport';
import { webviewHtml, webviewOptions } from './webviewHtml';

/** Above this (A and B as float32), drawing a tensor shows a cancellable notification. */
const LARGE_TENSOR_BYTES = 256 * 1024 * 1024;

export class DiffPanel extends Disposable {
  static readonly viewType = 'rebasin.diff';
  private static readonly open = new Set<DiffPanel>();
  private static readonly opened = new vscode.EventEmitter<DiffPanel>();
  /** Fires when a panel is created (tests and automation use it). */
  static readonly onDidOpen = DiffPanel.opened.event;

  private ready = false;
  /** The tensor picture being computed: a click on another row stops it. */
  private drawing: AbortController | undefined;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private state: DiffState,
    private readonly deps: Deps,
  ) {
    super();
    DiffPanel.open.add(this);
    this.register(panel.onDidDispose(() => this.dispose()));
    this.register(panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)));
  }

  /** Opens a panel showing `state`, or refreshes the open one with the same title. */
  static show(deps: Deps, state: DiffState): DiffPanel {
    for (const existing of DiffPanel.open) {
      if (existing.panel.title === state.title) {
        existing.update(state);
        existing.panel.reveal(undefined, false);
        return existing;
      }
    }
    const panel = vscode.window.createWebviewPanel(DiffPanel.viewType, state.title, vscode.ViewColumn.Active, { ...webviewOptions(deps.extensionUri), retainContextWhenHidden: false });
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icons', 'rebasin.svg');
    const created = new DiffPanel(panel, state, deps);
    panel.webview.html = webviewHtml(panel.webview, deps.extensionUri, 'diff', state.title);
    DiffPanel.opened.fire(created);
    return created;
  }

  static disposeAll(): void {
    for (const p of [...DiffPanel.open]) p.panel.dispose();
  }

  get title(): string {
    return this.panel.title;
  }

  get currentState(): DiffState {
    return this.state;
  }

  update(state: DiffState): void {
    this.state = state;
    if (this.ready) this.post({ type: 'init', state });
  }

  private post(message: ToDiff): void {
    void this.panel.webview.postMessage(message);
  }

  /** Scans A and B (one request each, in the compute worker) and marks their flagged tensors. */
  async scan(): Promise<void> {
    const { a, b } = this.state;
    try {
      const [scanA, scanB] = await withCancellableProgress(`Re-Basin: scanning ${a.name} and ${b.name} for problems`, async (report, signal) => [
        await this.deps.engine.run({ kind: 'scan', path: a.path }, { onProgress: (p) => report(p, { start: 0, end: 0.5 }), signal }),
        await this.deps.engine.run({ kind: 'scan', path: b.path }, { onProgress: (p) => report(p, { start: 0.5, end: 1 }), signal }),
      ]);
      this.deps.log.info(`scan: ${a.name} ${scanA.flagged} flagged, ${b.name} ${scanB.flagged} flagged`);
      this.update({ ...this.state, scanA, scanB });
    } catch (err) {
      reportFailure(this.deps.log, 'scanning for problems', err);
    }
  }

  /**
   * Draws one tensor (histograms and |A−B|) in the compute worker: of π(B) when the comparison
   * was aligned, with the permutations the diff kept. A failure is shown in the view, not as a toast.
   */
  async showTensor(tensor: string): Promise<void> {
    const { a, b, result, model } = this.state;
    if (!result.tensors.some((t) => t.name === tensor)) return;
    const perms = result.aligned?.perms;
    this.drawing?.abort();
    const drawing = new AbortController();
    this.drawing = drawing;
    const request = { kind: 'diffTensor', a: a.path, b: b.path, tensor, ...(perms ? { perms } : {}), ...(perms && model !== undefined ? { model } : {}) } as const;
    try {
      // A large tensor gets a notification with progress and Cancel; a small one is drawn at once, quietly.
      const picture = this.bytesOf(tensor) > LARGE_TENSOR_BYTES
        ? await withCancellableProgress(`Re-Basin: drawing ${tensor}`, (report, signal) => this.deps.engine.run(request, { onProgress: (p) => report(p), signal: AbortSignal.any([signal, drawing.signal]) }))
        : await this.deps.engine.run(request, { signal: drawing.signal });
      this.post({ type: 'tensor', picture });
    } catch (err) {
      if (!drawing.signal.aborted) this.post({ type: 'tensorError', tensor, message: errorMessage(err) });
    } finally {
      if (this.drawing === drawing) this.drawing = undefined;
    }
  }

  /** Bytes of A's and B's tensor read per pass (as float32 when decoded). */
  private bytesOf(tensor: string): number {
    const t = this.state.result.tensors.find((x) => x.name === tensor);
    return t ? 2 * 4 * t.shape.reduce((p, d) => p * d, 1) : 0;
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message = asFromDiff(raw);
    if (!message) {
      this.deps.log.warn('diff view: dropped an invalid message');
      return;
    }
    try {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          this.post({ type: 'init', state: this.state });
          break;
        case 'scan':
          await this.scan();
          break;
        case 'showTensor':
          await this.showTensor(message.tensor);
          break;
        case 'exportCsv':
        case 'exportPng':
          await saveExport(message, this.state.b.path, this.deps.log);
          break;
      }
    } catch (err) {
      void vscode.window.showErrorMessage(`Re-Basin: ${errorMessage(err)}`);
    }
  }

  override dispose(): void {
    this.drawing?.abort();
    DiffPanel.open.delete(this);
    super.dispose();
    this.panel.dispose();
  }
}
