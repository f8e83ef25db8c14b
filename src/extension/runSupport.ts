/**
 * What every command that runs work shares: resolving the checkpoint an explorer or palette
 * invocation is about, a cancellable progress notification wired to an AbortSignal, the guard
 * against writing over an input or an earlier output, and how failures are shown.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointName } from '../core/checkpointName';
import type { Progress } from '../core/checkpoint';
import { ProgressClock, formatProgress, type ProgressView } from '../core/progressText';
import { assertNotAnInput } from '../core/safetensors/output-guard';
import { isCancelled } from '../engine/errors';
import { CommandError } from './errors';
import type { Log } from './log';
import { cancelledText } from './outcomeText';
import { errorMessage } from './log';

/** safetensors, shard indexes, and the PyTorch and Flax files src/core/formats reads. */
const CHECKPOINT = /\.(safetensors|pt|pth|bin|ckpt|msgpack)$|\.index\.json$/i;

export function isCheckpointUri(uri: vscode.Uri): boolean {
  return CHECKPOINT.test(uri.path);
}

/**
 * The checkpoint a command is about: the explorer's clicked file (checked with instanceof, as
 * menus pass `(uri, uris)`), else the active inspector or editor tab, else undefined.
 */
export function targetUri(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  // A file open in the inspector is a checkpoint whatever its name (Flax's `checkpoint_100`).
  if (input instanceof vscode.TabInputCustom && input.viewType.startsWith('rebasin.inspector')) return input.uri;
  if (input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText) {
    return isCheckpointUri(input.uri) ? input.uri : undefined;
  }
  return undefined;
}

/** The other selected checkpoints of a multi-selection in the explorer. */
export function otherSelected(uri: vscode.Uri | undefined, uris: unknown): vscode.Uri[] {
  if (!Array.isArray(uris)) return [];
  return uris.filter((u): u is vscode.Uri => u instanceof vscode.Uri && isCheckpointUri(u) && u.fsPath !== uri?.fsPath);
}

export { formatNumber } from '../core/numberText';

/** Size and modification time of an output as written: a run remembers which file was its own. */
export interface FileStamp {
  readonly size: number;
  readonly mtime: number;
}

/** The output's stamp (a folder output: its weights file or index), or undefined when it is missing. */
export async function fileStamp(out: string): Promise<FileStamp | undefined> {
  const probe = async (file: string): Promise<FileStamp | undefined> => {
    try {
      const stat = await vscode.workspace.fs.stat(vscode.Uri.file(file));
      if (stat.type & vscode.FileType.Directory) return undefined;
      return { size: stat.size, mtime: stat.mtime };
    } catch {
      return undefined;
    }
  };
  return (await probe(out)) ?? (await probe(path.join(out, 'model.safetensors'))) ?? (await probe(path.join(out, 'model.safetensors.index.json')));
}

/**
 * A part of a command's work with its own progress (an align, then its loss curve): its
 * fractions map to [start, end] of the notification's bar and percentage.
 */
export interface ProgressPhase {
  readonly start: number;
  readonly end: number;
}

/** Reports engine progress to a notification; `phase` maps a request's fraction into the whole command's. */
export type ReportProgress = (p: Progress, phase?: ProgressPhase) => void;

/** What a job shows from the moment its Cancel is clicked until it has stopped. */
export const CANCELLING = 'Cancelling… (finishing the step under way)';

/**
 * Runs `work` under a cancellable notification; the token becomes an AbortSignal. The message is
 * "words (42%, about 1 min left)"; the bar never goes backwards.
 */
export function withCancellableProgress<T>(
  title: string,
  work: (report: ReportProgress, signal: AbortSignal) => Promise<T>,
): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const abort = new AbortController();
    // A cancel takes a moment to reach the workers: acknowledge it at once (the notification and
    // the status bar), and let no later progress message cover it.
    let cancelling: vscode.Disposable | undefined;
    const sub = token.onCancellationRequested(() => {
      progress.report({ message: CANCELLING });
      cancelling = vscode.window.setStatusBarMessage(`$(sync~spin) Re-Basin: ${CANCELLING}`);
      abort.abort();
    });
    // One clock per phase: the time left is estimated from the current phase's own rate; in an
    // earlier phase it is said to be that step's (it leaves out what follows).
    const clocks = new Map<string, ProgressClock>();
    let shown = 0;
    const report: ReportProgress = (p, phase) => {
      if (abort.signal.aborted) return;
      const f = p.fraction !== undefined && Number.isFinite(p.fraction) ? Math.min(1, Math.max(0, p.fraction)) : undefined;
      const whole = f === undefined ? (phase ? phase.start : undefined) : phase ? phase.start + f * (phase.end - phase.start) : f;
      const key = phase ? `${phase.start}-${phase.end}` : 'all';
      const clock = clocks.get(key) ?? new ProgressClock();
      clocks.set(key, clock);
      const local = clock.view({ ...p, fraction: f });
      const increment = whole !== undefined && whole * 100 > shown ? whole * 100 - shown : undefined;
      if (increment !== undefined) shown += increment;
      const last = !phase || phase.end >= 1;
      const view: ProgressView = {
        words: local.words,
        ...(whole !== undefined ? { percent: Math.floor(shown) } : {}),
        ...(local.secondsLeft !== undefined ? { secondsLeft: local.secondsLeft } : {}),
      };
      progress.report({ message: formatProgress(view, last ? undefined : 'for this step'), increment });
    };
    try {
      return await work(report, abort.signal);
    } finally {
      sub.dispose();
      cancelling?.dispose();
    }
  });
}

/**
 * Refuses to write over an input; asks before replacing an earlier output (unless `replace` is
 * already decided). Resolves false when the user declines.
 */
export async function confirmOutput(out: string, inputs: readonly string[], replace: boolean | undefined): Promise<boolean> {
  await assertNotAnInput(out, inputs);
  let exists = false;
  try {
    await vscode.workspace.fs.stat(vscode.Uri.file(out));
    exists = true;
  } catch {
    exists = false;
  }
  if (!exists || replace === true) return true;
  if (replace === false) return false;
  const choice = await vscode.window.showWarningMessage(
    `${checkpointName(out)} already exists (an earlier output). Replace it?`,
    { modal: true },
    'Replace',
  );
  return choice === 'Replace';
}

/**
 * Shows a failure as a notification naming the file and the problem (cancellation as a quiet
 * message) and logs it. Returns the error so automation callers can rethrow it.
 */
export function reportFailure(log: Log, what: string, err: unknown): unknown {
  if (isCancelled(err)) {
    // A CommandError 'Cancelled' names the output that was written before the cancel took effect.
    const text = cancelledText(what, err instanceof CommandError ? err.file : undefined);
    log.info(text);
    void vscode.window.showInformationMessage(`Re-Basin: ${text}.`);
    return err;
  }
  const message = describeError(err);
  log.error(`${what} failed: ${message}`);
  void vscode.window.showErrorMessage(`Re-Basin: ${what} failed: ${message}`, 'Show Log').then((c) => {
    if (c) log.show();
  });
  return err;
}

/** The error's one-line message, with the file it concerns when the message does not name it. */
export function describeError(err: unknown): string {
  const message = errorMessage(err).split('\n')[0] ?? 'unknown error';
  const file = typeof err === 'object' && err !== null ? (err as { file?: unknown }).file : undefined;
  if (typeof file !== 'string' || !file) return message;
  const base = path.basename(file);
  const name = checkpointName(file);
  // "model.safetensors: …" from the engine names the model by its folder here, like everything else.
  if (name !== base && message.startsWith(`${base}:`)) return `${name}:${message.slice(base.length + 1)}`;
  if (!message.includes(base) && !message.includes(name)) return `${name}: ${message}`;
  return message;
}
