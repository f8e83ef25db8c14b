// Cancelling an alignment as a person does, in a real VS Code (code-server + chromium): right-click
// B → Align with… → A → Weight matching, then the Cancel button of the progress notification
// (in the notification centre: under the smoke-test driver toasts only go there). Expected: an
// information "cancelled; nothing was written", no error, and no output or temp file beside B.
// Screenshots land in test-results/journey-cancel-*.png.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { menuItem, notification, runCommand, screenshot, startWorkbench, type Workbench } from '../harness/workbench';
import { writeMlp } from './checkpoints';

/** Wide enough that weight matching runs for seconds (about 5 s from the CLI on this machine). */
const WIDTHS = [784, 1024, 1024, 1024, 10];


let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-cancel-'));
  await writeMlp(join(workspace, 'big-a.safetensors'), 11, WIDTHS);
  await writeMlp(join(workspace, 'big-b.safetensors'), 12, WIDTHS);
  wb = await startWorkbench({ workspace, extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH });
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('Cancel on the progress notification stops the alignment: "cancelled", no error, nothing written', async () => {
  assert.ok(wb);
  const { page } = wb;
  try {
    await menuItem(page, 'big-b.safetensors', 'Align with…');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'big-a.safetensors' }).first().click({ timeout: 30_000 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Weight matching' }).first().click({ timeout: 30_000 });
    const started = Date.now();

    await runCommand(page, 'Notifications: Show Notifications', 10_000);
    const progress = page.locator('.notifications-center .notification-list-item', { hasText: 'aligning big-b.safetensors' }).first();
    await progress.waitFor({ state: 'visible', timeout: 30_000 });
    // Cancel once the engine reports a weight-matching sweep: the solve is under way.
    await progress.filter({ hasText: 'sweep' }).waitFor({ state: 'visible', timeout: 30_000 });
    await screenshot(page, 'journey-cancel-progress');
    await progress.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
    const clickedAfter = (Date.now() - started) / 1000;

    const cancelled = await notification(page, 'alignment cancelled; nothing was written', 30_000);
    const stopped = (Date.now() - started) / 1000;
    console.log(`[journey-cancel] Cancel clicked (during a sweep) ${clickedAfter.toFixed(1)} s after the pick; "cancelled" shown at ${stopped.toFixed(1)} s`);
    await screenshot(page, 'journey-cancel-cancelled');

    // An information (ⓘ), not an error: the notification's severity icon.
    assert.equal(await cancelled.locator('.codicon-error').count(), 0, 'the cancelled message is not shown as an error');
    assert.equal(await cancelled.locator('.codicon-info').count(), 1, 'the cancelled message is an information');
    const errors = await page.locator('.notifications-center .notification-list-item', { hasText: 'alignment failed' }).count();
    assert.equal(errors, 0, 'no error notification for a cancelled alignment');
    assert.equal(await page.locator('.notifications-center .notification-list-item', { hasText: 'aligned big-b.safetensors' }).count(), 0, 'the alignment did not finish');
    assert.deepEqual(readdirSync(workspace).sort(), ['big-a.safetensors', 'big-b.safetensors'], 'no output and no temp file beside B');
  } catch (e) {
    await screenshot(page, 'journey-cancel-failed').catch(() => undefined);
    throw e;
  }
});
