/**
 * The compute worker as the extension host sees it: started lazily on the first request (so
 * activation stays light), restarted when `rebasin.backend`/`rebasin.workers`/
 * `rebasin.nativeBackendPath` change, its backend shown in the status bar once it runs (with the
 * work in progress), terminated on deactivate. The extension host
 * never does heavy math on its own thread: everything numeric goes through `run`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineClient } from '../engine/client';
import { defaultMemoryBudget } from '../core/memoryBudget';
import { plannedWorkerCount } from '../engine/pool';
import type { BackendName, EngineRequest, ResultOf } from '../engine/protocol';
import type { CurvePoint, Progress } from '../core/checkpoint';
import { Disposable } from './dispose';
import { type Log, errorMessage } from './log';
import type { JobJournal } from './jobJournal';
import { readSettings } from './settings';

export interface RunOptions {
  readonly onProgress?: (p: Progress) => void;
  /** Each loss-curve point of a barrier as soon as it is evaluated (to fill a panel point by point). */
  readonly onPoint?: (p: CurvePoint) => void;
  readonly signal?: AbortSignal;
}

/** What the status bar says a request is doing. */
const WORK_WORDS: Record<EngineRequest['kind'], string> = {
  align: 'aligning',
  merge: 'merging',
  barrier: 'loss curve',
  evaluatePath: 'loss curve',
  equivalence: 'checking the aligned checkpoint',
  tensorStats: 'tensor statistics',
  diff: 'comparing',
  diffTensor: 'drawing a tensor',
  scan: 'scanning',
  train: 'training',
  backend: 'starting',
};

/** The backends in the user's words (status bar tooltip, "Show compute backend"). */
export const BACKEND_WORDS: Record<BackendName, string> = {
  tensorflow: 'native TensorFlow (tfjs-node)',
  wasm: 'WebAssembly (tfjs-backend-wasm)',
  cpu: 'plain JavaScript (tfjs-backend-cpu), the slowest backend',
};

export class EngineHost extends Disposable {
  private client: Promise<EngineClient> | undefined;
  private backendName: BackendName | undefined;
  private active = 0;
  private readonly status: vscode.StatusBarItem;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: Log,
    /** Notes each run-making request while it is under way (a reload then leaves a trace). */
    private readonly journal?: JobJournal,
  ) {
    super();
    this.status = this.register(vscode.window.createStatusBarItem('rebasin.engine', vscode.StatusBarAlignment.Left, 10));
    this.status.name = 'Re-Basin compute';
    this.status.command = 'rebasin.showBackend';
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        const compute = ['rebasin.backend', 'rebasin.workers', 'rebasin.nativeBackendPath'].some((s) => e.affectsConfiguration(s));
        if (compute && this.active === 0) {
          this.log.info('compute settings changed: the worker restarts on next use');
          void this.stop();
        }
      }),
    );
  }

  /** True once a worker has been started (tests check activation does not start it). */
  get started(): boolean {
    return this.client !== undefined;
  }

  /** The backend of the running worker, if any. */
  get backend(): BackendName | undefined {
    return this.backendName;
  }

  /** Sends one request to the worker (starting it if needed) and shows the work in the status bar. */
  async run<R extends EngineRequest>(request: R, options: RunOptions = {}): Promise<ResultOf[R['kind']]> {
    const client = await this.ensure();
    this.active++;
    this.updateStatus(request.kind);
    const noted = await this.journal?.begin(request);
    try {
      return await client.request(request, { onProgress: options.onProgress, onPoint: options.onPoint, signal: options.signal });
    } finally {
      this.active--;
      this.updateStatus();
      await noted?.();
    }
  }

  /** Starts the worker if needed and returns its backend. */
  async ensureBackend(): Promise<BackendName> {
    const client = await this.ensure();
    return this.backendName ?? client.backend();
  }

  private ensure(): Promise<EngineClient> {
    if (!this.client) {
      const settings = readSettings();
      const workerScript = path.join(this.extensionUri.fsPath, 'dist', 'worker.js');
      const started = Date.now();
      this.log.info(`starting compute worker (backend setting: ${settings.backend}, workers: ${settings.workers ?? 'one per core'})`);
      // Capped by the cores and the memory budget, as the CLI's --workers is.
      const workers = plannedWorkerCount(settings.workers, settings.memoryBudget ?? defaultMemoryBudget());
      if (workers.note) this.log.warn(`rebasin.workers: ${workers.note}`);
      const client = EngineClient.start({
        backend: settings.backend,
        nativeBackendPath: settings.nativeBackendPath,
        workers: workers.count,
        workerScript,
        log: (line: string) => this.log.trace(`worker: ${line}`),
      });
      // The first worker starts in the background; its backend (or its failure) arrives here.
      const ready = client.backend().then(
        (backend) => {
          this.backendName = backend;
          this.log.info(`compute worker ready on ${backend} in ${Date.now() - started} ms`);
          this.updateStatus();
          return client;
        },
        async (err: unknown) => {
          if (this.client === ready) this.client = undefined;
          this.log.error(`compute worker failed to start: ${errorMessage(err)}`);
          await client.dispose().catch(() => undefined);
          throw err;
        },
      );
      this.client = ready;
    }
    return this.client;
  }

  /**
   * Loads tfjs-node from `folder` in a worker of its own (the running one is left alone) and
   * resolves when the `tensorflow` backend works there; rejects with the reason it does not.
   */
  async checkNative(folder: string): Promise<void> {
    const probe = EngineClient.start({
      backend: 'tensorflow',
      nativeBackendPath: folder,
      workers: 1,
      workerScript: path.join(this.extensionUri.fsPath, 'dist', 'worker.js'),
      log: (line: string) => this.log.trace(`native check: ${line}`),
    });
    try {
      await probe.backend();
    } finally {
      await probe.dispose().catch(() => undefined);
    }
  }

  /** Work in progress while requests run; otherwise the backend of the running worker (none before it starts). */
  private updateStatus(kind?: EngineRequest['kind']): void {
    const backend = this.backendName;
    if (this.active > 0) {
      this.status.text = `$(sync~spin) Re-Basin: ${kind ? WORK_WORDS[kind] : 'working'} on ${backend ?? '…'}`;
      this.status.tooltip = `Re-Basin compute worker (${backend ?? '…'} backend) is running ${this.active} request(s)`;
      this.status.show();
    } else if (backend) {
      this.status.text = `$(chip) Re-Basin: ${backend}`;
      this.status.tooltip = `Re-Basin computes on ${BACKEND_WORDS[backend]}. Click for details.`;
      this.status.show();
    } else {
      this.status.hide();
    }
  }

  /** Terminates the worker; the next request starts a fresh one. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.backendName = undefined;
    this.updateStatus();
    if (!client) return;
    try {
      await (await client).dispose();
    } catch {
      // A worker that failed to start has nothing to terminate.
    }
  }

  override dispose(): void {
    void this.stop();
    super.dispose();
  }
}
