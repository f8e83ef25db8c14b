/**
 * The checkpoint inspector: a read-only custom editor for `*.safetensors` (default editor: the
 * file is binary) and `*.safetensors.index.json` (offered under "Open With…"). Opening reads the
 * header only, so a 10 GB file shows at once; per-tensor statistics and histograms are computed
 * in the compute worker when the user asks for them.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint, checkpointSummary } from '../core/safetensors';
import { describeFamily, inferSpec, symmetryGroupLog10 } from '../core/spec';
import { readHfConfig } from '../core/families/hfConfig';
import type { ArchitectureInfo, InspectorState, ToInspector } from '../../webview/protocol';
import { Disposable } from './dispose';
import type { EngineHost } from './engineHost';
import type { Log } from './log';
import { errorMessage, timed } from './log';
import { asFromInspector } from './messageGuards';
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
  /** The same inspector, offered for sharded index JSON files (priority "option"). */
  static readonly indexViewType = 'rebasin.inspectorIndex';
  private static readonly shownEmitter = new vscode.EventEmitter<InspectorState>();
  /** Fires each time an inspector has sent its state to its webview (tests use it). */
  static readonly onDidShow = InspectorEditorProvider.shownEmitter.event;

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
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'inspector', path.basename(document.uri.fsPath));
    const post = (m: ToInspector): void => void panel.webview.postMessage(m);
    const abort = new AbortController();
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
        // Only tensors of this checkpoint's header, in the file the extension opened.
        if (!document.tensorNames.has(message.tensor)) {
          post({ type: 'statsError', tensor: message.tensor, message: 'no such tensor in this checkpoint' });
          return;
        }
        try {
          const stats = await timed(this.log, `tensor stats ${path.basename(document.uri.fsPath)} \`${message.tensor}\``, () =>
            this.engine.run(
              { kind: 'tensorStats', path: document.uri.fsPath, tensor: message.tensor, bins: HISTOGRAM_BINS },
              { signal: abort.signal },
            ),
          );
          post({ type: 'stats', tensor: message.tensor, stats });
        } catch (err) {
          post({ type: 'statsError', tensor: message.tensor, message: errorMessage(err) });
        }
      }),
    ];
    panel.onDidDispose(() => {
      abort.abort();
      subs.forEach((s) => s.dispose());
    });
  }
}

/** Reads the header (never tensor data) and describes the architecture when it can be inferred. */
export async function readInspectorState(uri: vscode.Uri, log: Log): Promise<InspectorState> {
  const file = uri.fsPath;
  const base = { path: file, format: file.endsWith('.json') ? 'sharded' : 'safetensors', metadata: {}, tensors: [], totalParams: 0, totalBytes: 0 };
  if (uri.scheme !== 'file') return { ...base, error: `${path.basename(file)}: only files on disk can be inspected (scheme ${uri.scheme})` };
  const started = Date.now();
  let ckpt;
  try {
    ckpt = await openCheckpoint(file);
  } catch (err) {
    log.warn(`inspector: ${errorMessage(err)}`);
    return { ...base, error: errorMessage(err) };
  }
  try {
    const summary = checkpointSummary(ckpt);
    let architecture: ArchitectureInfo | undefined;
    try {
      const inferred = inferSpec(summary.tensors, readHfConfig(summary.path));
      architecture = {
        family: describeFamily(inferred),
        perms: inferred.spec.perms,
        symmetryLog10: symmetryGroupLog10(inferred.spec),
        notes: inferred.notes,
      };
    } catch (err) {
      log.trace(`inspector: no architecture for ${path.basename(file)}: ${errorMessage(err)}`);
    }
    log.info(`inspector: read header of ${file} (${summary.tensors.length} tensors) in ${Date.now() - started} ms`);
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
