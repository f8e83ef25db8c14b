// The harness itself, independent of the product: code-server + chromium open the workbench on
// a temp folder, the explorer lists its files, a screenshot lands in test-results/, a palette
// command runs, and the document inside a webview (VS Code's own Markdown preview) is reachable.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { explorerRow, findFrame, runCommand, screenshot, startWorkbench, webviewFrame, type Workbench } from '../harness/workbench';

let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-smoke-'));
  writeFileSync(join(workspace, 'hello-rebasin.txt'), 'hello\n');
  writeFileSync(join(workspace, 'notes.md'), '# Preview heading from the harness\n\nsome text\n');
  // No extension: this checks the harness alone, independent of the product's state.
  wb = await startWorkbench({ workspace, extensionDevelopmentPath: null });
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('the workbench opens the folder and the explorer lists its file', async () => {
  assert.ok(wb);
  const row = explorerRow(wb.page, 'hello-rebasin.txt');
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal(await row.getAttribute('aria-label').then((l) => l?.includes('hello-rebasin.txt')), true);
  const shot = await screenshot(wb.page, 'harness-smoke-workbench');
  assert.ok(existsSync(shot) && statSync(shot).size > 10_000, `${shot}: screenshot missing or empty`);
});

test('a palette command opens a webview whose document the harness reads', async () => {
  assert.ok(wb);
  await explorerRow(wb.page, 'notes.md').click();
  await wb.page.locator('.tab', { hasText: 'notes.md' }).first().waitFor({ timeout: 30_000 });
  await runCommand(wb.page, 'Markdown: Open Preview to the Side');
  const heading = webviewFrame(wb.page).locator('h1');
  await heading.waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal((await heading.textContent())?.trim(), 'Preview heading from the harness');
  const frame = await findFrame(wb.page, 'h1', 10_000);
  assert.equal((await frame.locator('h1').textContent())?.trim(), 'Preview heading from the harness');
  await screenshot(wb.page, 'harness-smoke-webview');
});
