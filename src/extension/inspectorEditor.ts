/**
 * The checkpoint inspector: a read-only custom editor for `*.safetensors`, PyTorch `*.pt`, `*.pth`,
 * `*.ckpt` and Flax `*.msgpack` (default editor: the files are binary), and `*.index.json`, `*.bin`
 * and `checkpoint_*` (offered under "Open With…"). Opening reads the header (or pickle) only, so a 10 GB file shows at once; per-tensor statistics and histograms are computed
 * in the compute worker when the user asks for them.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointName } from '../core/checkpointName';
import { SafetensorsError, openCheckpoint, checkpointSummary } from '../core/safetensors';
import { stackExperts } from '../core/moe/expertStack';
import { architectureOf } from './inspectorArchitecture';
import { readHfConfig } from '../core/families/hfConfig';
import type { ArchitectureInfo, InspectorState, ToInspector } from '../../webview/protocol';
import { Disposable } from './dispose';
import type { EngineHost } from './engineHost';
import type { Log } from './log';
import { errorMessage, timed } from './log';
import { asFromInspector } from './messageGuards';
import { isCancelled } from '../engine/errors';
import { ProgressClock, formatTimeLeft } from '../core/progressText';
import { reportFailure, withCancellableProgress } from './runSupport';
import { webviewHtml, webviewOptions } from './webviewHtml';

const HISTOGRAM_BINS = 64;

/** The document: the file's URI and, once read, its header summary. */
class CheckpointDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    readonly state: InspectorState,
    readonly tensorNames: ReadonlySet<string>,
  ) {}
  dispose(): void {
    // Nothing is held open: the header was read and the file closed.
  }
}

export class InspectorEditorProvider extends Disposable implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  static readonly viewType = 'rebasin.inspector';
  /** The same inspector, offered (priority "option") for sharded index JSON files and names other tools use too (`.bin`, Flax's `checkpoint_<step>`). */
  static readonly indexViewType = 'rebasin.inspectorIndex';

  /** The view type whose package.json selector matches the file (the default one for .safetensors, .pt, .pth, .ckpt, .msgpack). */
  static viewTypeFor(file: string): string {
    return /\.(safetensors|pt|pth|ckpt|msgpack)$/i.test(file) ? InspectorEditorProvider.viewType : InspectorEditorProvider.indexViewType;
  }
  private static readonly shownEmitter = new vscode.EventEmitter<InspectorState>();
  /** Fires each time an inspector has sent its state to its webview (tests use it). */
  static readonly onDidShow = InspectorEditorProvider.shownEmitter.event;
  private static readonly statsEmitter = new vscode.EventEmitter<{ readonly tensor: string; readonly running: number }>();
  /** Fires when a statistics computation starts or ends, with how many run in that editor (tests use it). */
  static readonly onDidChangeStats = InspectorEditorProvider.statsEmitter.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: EngineHost,
    private readonly log: Log,
  ) {
    super();
  }

  static register(context: vscode.ExtensionContext, deps: { engine: EngineHost; log: Log }): vscode.Disposable {
    const provider = new InspectorEditorProvider(context.extensionUri, deps.engine, deps.log);
    const options = { supportsMultipleEditorsPerDocument: true, webviewOptions: { retainContextWhenHidden: false } };
    return vscode.Disposable.from(
      vscode.window.registerCustomEditorProvider(InspectorEditorProvider.viewType, provider, options),
      vscode.window.registerCustomEditorProvider(InspectorEditorProvider.indexViewType, provider, options),
      provider,
    );
  }

  async openCustomDocument(uri: vscode.Uri): Promise<CheckpointDocument> {
    const state = await readInspectorState(uri, this.log);
    return new CheckpointDocument(uri, state, new Set(state.tensors.map((t) => t.name)));
  }

  async resolveCustomEditor(document: CheckpointDocument, panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'inspector', checkpointName(document.uri.fsPath));
    const post = (m: ToInspector): void => void panel.webview.postMessage(m);
    // One computation per tensor at a time; each can be cancelled, and closing the tab cancels all.
    const running = new Map<string, AbortController>();
    const subs = [
      panel.webview.onDidReceiveMessage(async (raw: unknown) => {
        const message = asFromInspector(raw);
        if (!message) {
          this.log.warn('inspector: dropped an invalid message');
          return;
        }
        if (message.type === 'ready') {
          post({ type: 'init', state: document.state });
          InspectorEditorProvider.shownEmitter.fire(document.state);
          return;
        }
        if (message.type === 'cancelStats') {
          running.get(message.tensor)?.abort();
          return;
        }
        if (message.type === 'scan') {
          await this.scan(document, post);
          return;
        }
        // Only tensors of this checkpoint's header, in the file the extension opened.
        if (!document.tensorNames.has(message.tensor)) {
          post({ type: 'statsError', tensor: message.tensor, message: 'no such tensor in this checkpoint' });
          return;
        }
        if (running.has(message.tensor)) return;
        await this.computeStats(document, message.tensor, running, post);
      }),
    ];
    panel.onDidDispose(() => {
      for (const abort of running.values()) abort.abort();
      subs.forEach((s) => s.dispose());
    });
  }

  /** "Scan for problems": every tensor's statistics and flags, in the worker, under a cancellable notification. */
  private async scan(document: CheckpointDocument, post: (m: ToInspector) => void): Promise<void> {
    const name = path.basename(document.uri.fsPath);
    try {
      const scan = await withCancellableProgress(`Re-Basin: scanning ${name} for problems`, (report, signal) =>
        this.engine.run({ kind: 'scan', path: document.uri.fsPath }, { onProgress: (p) => report(p), signal }),
      );
      this.log.info(`scan: ${name}: ${scan.flagged} of ${scan.tensors.length} tensors flagged in ${scan.seconds.toFixed(1)} s`);
      post({ type: 'scan', scan });
    } catch (err) {
      reportFailure(this.log, 'scanning for problems', err);
      post({ type: 'scanStopped', message: isCancelled(err) ? 'Scan cancelled.' : `Scan failed: ${errorMessage(err)}` });
    }
  }

  /** Runs one tensor's statistics in the compute worker, posting progress, the result, or why it stopped. */
  private async computeStats(document: CheckpointDocument, tensor: string, running: Map<string, AbortController>, post: (m: ToInspector) => void): Promise<void> {
    const abort = new AbortController();
    const clock = new ProgressClock();
    running.set(tensor, abort);
    InspectorEditorProvider.statsEmitter.fire({ tensor, running: running.size });
    try {
      const stats = await timed(this.log, `tensor stats ${checkpointName(document.uri.fsPath)} \`${tensor}\``, () =>
        this.engine.run(
          { kind: 'tensorStats', path: document.uri.fsPath, tensor, bins: HISTOGRAM_BINS },
          {
            signal: abort.signal,
            onProgress: (p) => {
              if (p.fraction !== undefined && Number.isFinite(p.fraction)) {
                // The time left at the measured rate, as every long job shows it.
                const left = clock.view(p).secondsLeft;
                post({ type: 'statsProgress', tensor, fraction: Math.min(1, Math.max(0, p.fraction)), message: p.message, ...(left !== undefined ? { timeLeft: formatTimeLeft(left) } : {}) });
              }
            },
          },
        ),
      );
      post({ type: 'stats', tensor, stats });
    } catch (err) {
      if (isCancelled(err)) post({ type: 'statsCancelled', tensor });
      else post({ type: 'statsError', tensor, message: errorMessage(err) });
    } finally {
      running.delete(tensor);
      InspectorEditorProvider.statsEmitter.fire({ tensor, running: running.size });
    }
  }
}

/**
 * Why a file is not a safetensors file at all, in words, when the reader stopped at its first
 * bytes (a PyTorch .bin renamed, a text file): the raw reason would quote a 19-digit "header
 * length" read from arbitrary bytes.
 */
const NOT_SAFETENSORS: Readonly<Record<string, string>> = {
  HeaderTooSmall: 'it is shorter than the 8-byte header length',
  HeaderTooLarge: 'its first 8 bytes are not a header length',
  InvalidHeaderLength: 'its first 8 bytes are not a header length',
  InvalidUtf8: 'no JSON header follows its first 8 bytes',
  InvalidJson: 'no JSON header follows its first 8 bytes',
  NotAnObject: 'no JSON header follows its first 8 bytes',
};

export function notSafetensorsText(file: string, err: unknown): string | undefined {
  const kind = err instanceof SafetensorsError ? err.kind : undefined;
  const why = kind ? NOT_SAFETENSORS[kind] : undefined;
  return why ? `${checkpointName(file)}: not a safetensors file (${why})` : undefined;
}

/** Reads the header (never tensor data) and describes the architecture when it can be inferred. */
export async function readInspectorState(uri: vscode.Uri, log: Log): Promise<InspectorState> {
  const file = uri.fsPath;
  const base = { path: file, format: file.endsWith('.json') ? 'sharded' : /\.(pt|pth|bin|ckpt)$/i.test(file) ? 'pytorch' : /\.msgpack$/i.test(file) ? 'flax' : 'safetensors', metadata: {}, tensors: [], totalParams: 0, totalBytes: 0 };
  if (uri.scheme !== 'file') return { ...base, error: `${checkpointName(file)}: only files on disk can be inspected (scheme ${uri.scheme})` };
  const started = Date.now();
  let ckpt;
  try {
    ckpt = await openCheckpoint(file);
  } catch (err) {
    log.warn(`inspector: ${errorMessage(err)}`);
    return { ...base, error: notSafetensorsText(file, err) ?? errorMessage(err) };
  }
  try {
    const summary = checkpointSummary(ckpt);
    let architecture: ArchitectureInfo | undefined;
    try {
      // Mixture-of-experts layers as the spec sees them (stacked: core/moe/expertStack.ts).
      architecture = architectureOf(stackExperts(ckpt).tensors, readHfConfig(summary.path));
    } catch (err) {
      log.trace(`inspector: no architecture for ${path.basename(file)}: ${errorMessage(err)}`);
    }
    log.info(`inspector: read header of ${file} (${summary.tensors.length} tensors${summary.origin ? `, ${summary.format} weights at ${summary.origin}` : ''}) in ${Date.now() - started} ms`);
    return {
      path: summary.path,
      format: summary.format,
      metadata: summary.metadata,
      tensors: summary.tensors,
      totalParams: summary.totalParams,
      totalBytes: summary.totalBytes,
      architecture,
    };
  } finally {
    await ckpt.close();
  }
}
