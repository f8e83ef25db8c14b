/**
 * What every command that runs work shares: resolving the checkpoint an explorer or palette
 * invocation is about, a cancellable progress notification wired to an AbortSignal, the guard
 * against writing over an input or an earlier output, and how failures are shown.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Progress } from '../core/checkpoint';
import { assertNotAnInput } from '../core/safetensors/output-guard';
import { isCancelled } from '../engine/errors';
import type { Log } from './log';
import { errorMessage } from './log';

const CHECKPOINT = /\.safetensors$|\.safetensors\.index\.json$/i;

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

/** Formats engine progress for the notification: stage, sweep, objective. */
export function progressText(p: Progress): string {
  const parts = [p.stage];
  if (p.iteration !== undefined) parts.push(`sweep ${p.iteration}`);
  if (p.objective !== undefined) parts.push(`objective ${formatNumber(p.objective)}`);
  if (p.message) parts.push(p.message);
  return parts.join(' · ');
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(3) : x.toPrecision(5).replace(/\.?0+$/, '');
}

/** Runs `work` under a cancellable notification; the token becomes an AbortSignal. */
export function withCancellableProgress<T>(
  title: string,
  work: (report: (p: Progress) => void, signal: AbortSignal) => Promise<T>,
): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    let shown = 0;
    const report = (p: Progress): void => {
      const fraction = p.fraction !== undefined && Number.isFinite(p.fraction) ? Math.min(1, Math.max(0, p.fraction)) : undefined;
      const increment = fraction !== undefined && fraction * 100 > shown ? fraction * 100 - shown : undefined;
      if (increment !== undefined) shown += increment;
      progress.report({ message: progressText(p), increment });
    };
    try {
      return await work(report, abort.signal);
    } finally {
      sub.dispose();
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
    `${path.basename(out)} already exists (an earlier output). Replace it?`,
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
    log.info(`${what}: cancelled`);
    void vscode.window.showInformationMessage(`Re-Basin: ${what} cancelled; nothing was written.`);
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
  if (typeof file === 'string' && file && !message.includes(path.basename(file))) return `${path.basename(file)}: ${message}`;
  return message;
}
