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
}
