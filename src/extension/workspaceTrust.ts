/**
 * Restricted Mode: inspecting headers is safe, but aligning, merging and barrier runs execute
 * model code paths over workspace files and write new files, so they need trust
 * (`capabilities.untrustedWorkspaces.supported = "limited"` in package.json).
 */
import * as vscode from 'vscode';

/** True when the workspace is trusted; otherwise says why the command cannot run. */
export async function requireTrust(what: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `Re-Basin: ${what} needs a trusted workspace (Restricted Mode only allows inspecting checkpoints).`,
    'Manage Workspace Trust',
  );
  if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}
