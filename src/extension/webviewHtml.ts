/**
 * The HTML shell of every Re-Basin webview: a strict Content-Security-Policy (nothing but our own
 * bundle, allowed by a fresh nonce, and our own CSS), resources only from `dist/webview` and
 * `media`, as the VS Code webview guide and the custom-editor sample recommend.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';

export type WebviewName = 'alignment' | 'barriers' | 'inspector' | 'diff';

/** The only folders a Re-Basin webview may load from. */
export function webviewRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')];
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: webviewRoots(extensionUri) };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, name: WebviewName, title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${name}.js`));
  // Shared stylesheet first, then the view's own; only files that exist are linked.
  const styles = ['webview.css', 'common.css', `${name}.css`]
    .map((f) => vscode.Uri.joinPath(extensionUri, 'media', f))
    .filter((u) => existsSync(u.fsPath))
    .map((u) => `<link rel="stylesheet" href="${webview.asWebviewUri(u).toString()}">`)
    .join('\n    ');
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${csp}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    ${styles}
    <title>${escapeHtml(title)}</title>
  </head>
  <body data-view="${name}">
    <div id="root"></div>
    <script nonce="${nonce}" src="${script.toString()}"></script>
  </body>
</html>`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
