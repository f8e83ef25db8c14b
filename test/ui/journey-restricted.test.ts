// Re-Basin in Restricted Mode (a folder that is not trusted), in a real VS Code (code-server +
// chromium with workspace trust on): the explorer's context menu on a .safetensors file offers
// "Inspect checkpoint" but not "Align with…" / "Compute barrier with…" (package.json `when`
// clauses use `isWorkspaceTrusted`), and inspecting still works. Screenshots land in
// test-results/journey-restricted-*.png.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { EXPLORER_ROW, explorerRow, screenshot, startWorkbench, type Workbench } from '../harness/workbench';
import { writeMlp } from './checkpoints';



/** The first frame (of any webview) whose document has `selector`, waiting up to `ms`. */
async function frameWith(page: Page, selector: string, ms: number): Promise<Frame> {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const f of page.frames()) {
      if ((await f.locator(selector).count().catch(() => 0)) > 0) return f;
    }
    if (Date.now() > deadline) throw new Error(`no webview showed \`${selector}\` within ${ms / 1000} s`);
    await page.waitForTimeout(500);
  }
}

/**
 * Right-clicks `file` until the menu shows `ready` (the extension's entries appear once its host
 * has loaded it) and returns the texts of the menu's items, leaving the menu open.
 */
async function menuItemsOnceReady(page: Page, file: string, ready: string, ms = 90_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  const items = page.locator('.monaco-menu .action-item');
  for (;;) {
    const row = explorerRow(page, file);
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await row.click({ button: 'right' });
    await page.locator('.monaco-menu').first().waitFor({ state: 'visible', timeout: 10_000 });
    const texts = (await items.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
    if (texts.some((t) => t.startsWith(ready))) return texts;
    await page.keyboard.press('Escape');
    if (Date.now() > deadline) throw new Error(`${file}: context menu never offered "${ready}" (items: ${texts.join(' | ')})`);
    await page.waitForTimeout(2_000);
  }
}

/** Titles of the command palette's rows for `query`, once `expected` is among them (left open). */
async function paletteTitles(page: Page, query: string, expected: string): Promise<string[]> {
  const input = page.locator('.quick-input-widget input').first();
  await page.keyboard.press('F1');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${query}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: expected }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  return rows.map((t) => t.replace(/\s+/g, ' ').trim());
}

let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-restricted-'));
  await writeMlp(join(workspace, 'a.safetensors'), 1);
  await writeMlp(join(workspace, 'b.safetensors'), 2);
  wb = await startWorkbench({ workspace, restricted: true, extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH });
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('Restricted Mode: explorer and palette offer Inspect but not Align/Merge/Barrier, and the inspector opens', async () => {
  assert.ok(wb);
  const { page } = wb;
  try {
    // The workbench really is in Restricted Mode (its status bar entry), not merely trusted.
    await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).first().waitFor({ state: 'visible', timeout: 60_000 });
    await page.locator(EXPLORER_ROW).first().waitFor({ state: 'visible', timeout: 60_000 });

    const texts = await menuItemsOnceReady(page, 'b.safetensors', 'Inspect checkpoint');
    await screenshot(page, 'journey-restricted-menu');
    assert.ok(!texts.some((t) => t.startsWith('Align with')), `no "Align with…" in Restricted Mode: ${texts.join(' | ')}`);
    assert.ok(!texts.some((t) => t.startsWith('Compute barrier with')), `no "Compute barrier with…" in Restricted Mode: ${texts.join(' | ')}`);

    await page.locator('.monaco-menu .action-item', { hasText: 'Inspect checkpoint' }).first().click();
    const frame = await frameWith(page, 'text=P_fc2', 60_000);
    // The header's tensor table (fc1.weight is [32, 8]): read from the header alone, no compute.
    await frame.locator('text=[32, 8]').first().waitFor({ state: 'visible', timeout: 30_000 });
    await screenshot(page, 'journey-restricted-inspector');

    // The palette lists the inspecting command but not the writing ones (`enablement: isWorkspaceTrusted`).
    const palette = await paletteTitles(page, 'Re-Basin:', 'Re-Basin: Inspect checkpoint');
    await screenshot(page, 'journey-restricted-palette');
    await page.keyboard.press('Escape');
    for (const writing of ['Align with', 'Merge checkpoints', 'Compute barrier']) {
      assert.ok(!palette.some((t) => t.includes(`Re-Basin: ${writing}`)), `palette offers no "Re-Basin: ${writing}…" in Restricted Mode: ${palette.join(' | ')}`);
    }
  } catch (e) {
    await page.keyboard.press('Escape').catch(() => undefined);
    await screenshot(page, 'journey-restricted-failed').catch(() => undefined);
    throw e;
  }
});
