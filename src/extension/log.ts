/**
 * The one log of the extension: a LogOutputChannel named "Re-Basin" (View > Output), with
 * what ran, on which backend, and how long it took.
 */
import * as vscode from 'vscode';

export interface Log {
  trace(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string | Error): void;
  /** Shows the channel (used by "Show log" buttons on error notifications). */
  show(): void;
}

export function createLog(): Log & vscode.Disposable {
  const channel = vscode.window.createOutputChannel('Re-Basin', { log: true });
  return {
    trace: (m) => channel.trace(m),
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
    show: () => channel.show(true),
    dispose: () => channel.dispose(),
  };
}

/** Runs `work`, logging its start, its duration and its failure under `label`. */
export async function timed<T>(log: Log, label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  log.info(`${label}: started`);
  try {
    const result = await work();
    log.info(`${label}: done in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return result;
  } catch (err) {
    log.warn(`${label}: failed after ${((Date.now() - started) / 1000).toFixed(2)} s: ${errorMessage(err)}`);
    throw err;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
