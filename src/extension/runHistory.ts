/**
 * Every align, merge, barrier and diff run of the workspace, kept in the extension's workspace storage
 * (`context.storageUri`, or global storage when no folder is open) so the side view survives a
 * reload. The list is one small JSON file written atomically (temp file + rename); each run's
 * panel state (heatmaps are large) is a separate file beside it, never in workspaceState.
 */
import * as vscode from 'vscode';
import type { AlignmentState, BarrierCurve, DiffState } from '../../webview/protocol';
import { Disposable } from './dispose';
import { type Log, errorMessage } from './log';
import { decodeDiffPanel, decodePanel, encodePanel, parseRunList, type RunRecord } from './runRecord';

export type { RunRecord };

const LIST_FILE = 'runs.json';
const FORMAT_VERSION = 1;

export class RunHistory extends Disposable {
  private runs: RunRecord[] = [];
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  /** Fires after every add, delete or clear. */
  readonly onDidChange = this.changed.event;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: vscode.Uri,
    private readonly log: Log,
  ) {
    super();
  }

  static async create(dir: vscode.Uri, log: Log): Promise<RunHistory> {
    const history = new RunHistory(dir, log);
    await history.load();
    return history;
  }

  /** Newest first. */
  list(): readonly RunRecord[] {
    return this.runs;
  }

  get(id: string): RunRecord | undefined {
    return this.runs.find((r) => r.id === id);
  }

  /** Adds a run; `panel` is its view's state (an alignment panel's, or the diff view's for a diff run). */
  async add(record: Omit<RunRecord, 'id' | 'createdAt' | 'hasPanel' | 'replaced'>, panel?: AlignmentState | DiffState): Promise<RunRecord> {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    let hasPanel = false;
    if (panel) {
      try {
        await this.writeAtomic(this.panelUri(id), encodePanel(panel));
        hasPanel = true;
      } catch (err) {
        this.log.warn(`run history: could not store the panel of run ${id}: ${errorMessage(err)}`);
      }
    }
    const full: RunRecord = { ...record, id, createdAt: new Date().toISOString(), hasPanel };
    // Earlier runs that wrote the same output lost their file to this one.
    const replaces = (r: RunRecord): boolean => full.outPath !== undefined && r.outPath === full.outPath && !r.replaced;
    this.runs = [full, ...this.runs.map((r) => (replaces(r) ? { ...r, replaced: true } : r))];
    await this.save();
    return full;
  }

  async loadPanel(id: string): Promise<AlignmentState | undefined> {
    return this.readPanel(id, decodePanel);
  }

  /** A diff run's stored diff view state. */
  async loadDiffPanel(id: string): Promise<DiffState | undefined> {
    return this.readPanel(id, decodeDiffPanel);
  }

  private async readPanel<T>(id: string, decode: (bytes: Uint8Array) => T): Promise<T | undefined> {
    const run = this.get(id);
    if (!run?.hasPanel) return undefined;
    try {
      return decode(await vscode.workspace.fs.readFile(this.panelUri(id)));
    } catch (err) {
      this.log.warn(`run history: panel of run ${id} is unreadable: ${errorMessage(err)}`);
      return undefined;
    }
  }

  /** Marks a run's output as replaced (found changed on disk when the run was reopened). */
  async markReplaced(id: string): Promise<void> {
    if (!this.get(id) || this.get(id)?.replaced) return;
    this.runs = this.runs.map((r) => (r.id === id ? { ...r, replaced: true } : r));
    await this.save();
  }

  async delete(id: string): Promise<void> {
    const run = this.get(id);
    if (!run) return;
    this.runs = this.runs.filter((r) => r.id !== id);
    await this.save();
    if (run.hasPanel) await this.removeQuietly(this.panelUri(id));
  }

  async clear(): Promise<void> {
    const old = this.runs;
    this.runs = [];
    await this.save();
    for (const r of old) if (r.hasPanel) await this.removeQuietly(this.panelUri(r.id));
  }

  /**
   * The λ with the lowest loss inside (0, 1) on the most recent barrier curve for this pair, as a
   * weight of `other` in a merge with reference `reference` (1 − λ when the curve ran the other way).
   */
  suggestedLambda(reference: string, other: string): number | undefined {
    for (const r of this.runs) {
      if (!r.curve) continue;
      const forward = r.aPath === reference && r.bPath === other;
      const backward = r.aPath === other && r.bPath === reference;
      if (!forward && !backward) continue;
      const best = bestLambda(r.curve);
      if (best === undefined) continue;
      return forward ? best : 1 - best;
    }
    return undefined;
  }

  private panelUri(id: string): vscode.Uri {
    return vscode.Uri.joinPath(this.dir, 'panels', `${id.replace(/[^a-z0-9-]/gi, '')}.json`);
  }

  private async load(): Promise<void> {
    try {
      const bytes = await vscode.workspace.fs.readFile(vscode.Uri.joinPath(this.dir, LIST_FILE));
      const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
      this.runs = parseRunList(parsed);
    } catch (err) {
      if (!(err instanceof vscode.FileSystemError && err.code === 'FileNotFound')) {
        this.log.warn(`run history: starting empty (${errorMessage(err)})`);
      }
      this.runs = [];
    }
  }

  /** Serialises writes so two runs finishing together cannot interleave their renames. */
  private save(): Promise<void> {
    const body = new TextEncoder().encode(JSON.stringify({ version: FORMAT_VERSION, runs: this.runs }));
    this.writing = this.writing
      .catch(() => undefined)
      .then(() => this.writeAtomic(vscode.Uri.joinPath(this.dir, LIST_FILE), body));
    this.changed.fire();
    return this.writing;
  }

  private async writeAtomic(target: vscode.Uri, bytes: Uint8Array): Promise<void> {
    const parent = vscode.Uri.joinPath(target, '..');
    await vscode.workspace.fs.createDirectory(parent);
    const tmp = vscode.Uri.joinPath(parent, `.${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
    await vscode.workspace.fs.writeFile(tmp, bytes);
    await vscode.workspace.fs.rename(tmp, target, { overwrite: true });
  }

  private async removeQuietly(uri: vscode.Uri): Promise<void> {
    try {
      await vscode.workspace.fs.delete(uri);
    } catch {
      // Already gone.
    }
  }
}

/** λ of the lowest interior point of the aligned (else naive) loss curve. */
export function bestLambda(curve: BarrierCurve): number | undefined {
  const loss = curve.aligned?.loss ?? curve.naive.loss;
  let best: number | undefined;
  let bestLoss = Infinity;
  curve.lambdas.forEach((l, i) => {
    const v = loss[i];
    if (l > 0 && l < 1 && v !== undefined && Number.isFinite(v) && v < bestLoss) {
      bestLoss = v;
      best = l;
    }
  });
  return best;
}
