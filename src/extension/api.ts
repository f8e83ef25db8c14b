/**
 * What `activate` returns (`vscode.extensions.getExtension('rebasin.rebasin').exports`): a small
 * read-only window on the extension's state for integration tests and other extensions.
 */
import type * as vscode from 'vscode';
import type { InspectorState } from '../../webview/protocol';
import type { RunRecord } from './runHistory';

export interface RebasinApi {
  /** Every recorded run, newest first. */
  runs(): readonly RunRecord[];
  /** Titles of the open alignment/barrier panels. */
  openPanels(): string[];
  /** True once the compute worker has been started (activation alone must not start it). */
  engineStarted(): boolean;
  /** Fires when an inspector has sent a checkpoint's header to its webview. */
  readonly onDidShowInspector: vscode.Event<InspectorState>;
  /** Folder of the stored run history (a fresh RunHistory over it sees what a reload would). */
  historyLocation(): vscode.Uri;
  /** Fires when the run history changes. */
  readonly onDidChangeRuns: vscode.Event<void>;
  /**
   * Does what the panel serializer does after a window reload, on a new panel given the state its
   * webview kept (`{ui, title, data}`); resolves to the restored panel's title, or undefined when
   * nothing could be restored (tests: a real reload would end the test run).
   */
  restorePanel(saved: unknown): Promise<string | undefined>;
  /** Records the jobs an earlier window left noted as under way, as activation does; resolves to how many. */
  recoverInterruptedJobs(): Promise<number>;
}
