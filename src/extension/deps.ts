/** The shared services every command and view is built from (made once in `activate`). */
import type * as vscode from 'vscode';
import type { DataChoices } from './dataChoice';
import type { EngineHost } from './engineHost';
import type { Log } from './log';
import type { RunHistory } from './runHistory';

export interface Deps {
  readonly extensionUri: vscode.Uri;
  /** The extension's global storage (the native backend installs there). */
  readonly globalStorageUri: vscode.Uri;
  readonly log: Log;
  readonly engine: EngineHost;
  readonly history: RunHistory;
  /** Evaluation data chosen per model (workspace state). */
  readonly data: DataChoices;
}
