/**
 * Exports a panel's webview asks for (CSV text, PNG as a data URL): the webview only suggests a
 * bare file name; the user picks where it goes (beside `besideFile` by default), and the saved
 * file is confirmed with the two things one does next, Open and Reveal. One place for every panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Log } from './log';

export type ExportMessage =
  | { readonly type: 'exportCsv'; readonly suggestedName: string; readonly csv: string }
  | { readonly type: 'exportPng'; readonly suggestedName: string; readonly dataUrl: string };

const PNG_PREFIX = 'data:image/png;base64,';

export async function saveExport(message: ExportMessage, besideFile: string, log: Log): Promise<void> {
  const [bytes, filters] =
    message.type === 'exportCsv'
      ? [new TextEncoder().encode(message.csv), { 'CSV': ['csv'] }]
      : [Buffer.from(message.dataUrl.slice(PNG_PREFIX.length), 'base64'), { 'PNG image': ['png'] }];
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(besideFile), message.suggestedName)), filters });
  if (!target) return;
  await vscode.workspace.fs.writeFile(target, bytes);
  log.info(`exported ${target.fsPath}`);
  void vscode.window.showInformationMessage(`Re-Basin: saved ${path.basename(target.fsPath)}.`, 'Open', 'Reveal').then(async (choice) => {
    if (choice === 'Open') await vscode.commands.executeCommand('vscode.open', target);
    // In the Explorer when the file is in the workspace, else in the system's file manager.
    if (choice === 'Reveal') await vscode.commands.executeCommand(vscode.workspace.getWorkspaceFolder(target) ? 'revealInExplorer' : 'revealFileInOS', target);
  });
}
