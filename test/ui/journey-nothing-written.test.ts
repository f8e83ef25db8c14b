// Issue 19, item 1, as a person sees it in a real VS Code (code-server + chromium): right-click a
// Hugging Face model.safetensors whose folder has no config.json → Align with… → a GPT-2 folder →
// Weight matching. The engine's equivalence check fails (B's head count is guessed without its
// config), so nothing is written: the warning says so, why and by how much, and offers "Write
// anyway"; the panel (titled by the folders) links no output. "Write anyway" then writes it.
// Screenshots land in test-results/journey-nothing-written-*.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeSafetensors } from '../../src/core/safetensors';
import { explorerRow, findFrame, menuItem, notification, screenshot, startWorkbenchRetrying, type Workbench } from '../harness/workbench';
import { randomGpt2 } from '../unit/helpers/lmReference';
import { f32 } from './checkpoints';

/**
 * A GPT-2 of width 128 in `dir`; with `heads`, a config.json saying so. Without config.json the
 * engine takes GPT-2's head_dim of 64 (two heads), while the spec from A's config (one head)
 * permutes all 128 dims of the head freely: π(B) then computes something else.
 */
async function writeGpt2(dir: string, seed: number, heads?: number): Promise<void> {
  const w = randomGpt2({ layers: 1, d: 128, vocab: 20, positions: 8, lmHead: false, seed });
  mkdirSync(dir, { recursive: true });
  if (heads !== undefined) {
    const config = { model_type: 'gpt2', activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_embd: 128, n_head: heads, n_layer: 1, n_positions: 8, vocab_size: 20, tie_word_embeddings: true };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  }
  await writeSafetensors(join(dir, 'model.safetensors'), [...w].map(([name, t]) => f32(name, [...t.shape], t.data)), { metadata: { format: 'pt' } });
}

let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-nothing-written-'));
  await writeGpt2(join(workspace, 'gpt2-one-head'), 1, 1);
  await writeGpt2(join(workspace, 'bare-gpt2'), 2);
  wb = await startWorkbenchRetrying({ workspace, extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH }, 'journey-nothing-written');
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('a failed equivalence check: "nothing was written", why, no output link; "Write anyway" writes it', async () => {
  assert.ok(wb);
  const { page } = wb;
  const out = join(workspace, 'bare-gpt2', 'model.aligned.safetensors');
  try {
    await page.locator('.activitybar .action-item a[aria-label^="Re-Basin"]').first().waitFor({ timeout: 60_000 });
    await explorerRow(page, 'bare-gpt2').click();
    await menuItem(page, 'model.safetensors', 'Align with…');
    // The reference is listed by its folder; typing the folder name filters the pick.
    await page.keyboard.type('gpt2-one-head');
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'gpt2-one-head' }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await screenshot(page, 'journey-nothing-written-pick');
    await row.click();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Weight matching' }).first().click({ timeout: 30_000 });

    const warning = await notification(page, 'nothing was written', 120_000);
    const text = (await warning.textContent()) ?? '';
    assert.match(text, /aligned bare-gpt2 to gpt2-one-head, but nothing was written: the equivalence check failed on a seeded random batch: π\(B\) computes a different function than B \(largest logit difference [\d.]+/);
    assert.match(text, /--keep-on-mismatch/);
    assert.doesNotMatch(text, /\bwrote\b/);
    assert.equal(await warning.locator('.codicon-warning').count(), 1, 'shown as a warning');
    assert.ok(!existsSync(out), 'no aligned file');

    const frame = await findFrame(page, 'h1:has-text("Re-Basin: bare-gpt2 → gpt2-one-head")', 60_000);
    await frame.locator('text=Nothing written').first().waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await frame.locator('button[aria-label^="Open output"]').count(), 0, 'the panel links no output');
    await screenshot(page, 'journey-nothing-written-warning');

    await warning.locator('.monaco-button', { hasText: 'Write anyway' }).first().click();
    // Kept on request, and still said to differ from B.
    const wrote = await notification(page, 'wrote bare-gpt2/model.aligned.safetensors as asked, although the equivalence check failed', 120_000);
    assert.ok(existsSync(out), 'written on request');
    assert.equal(await wrote.locator('.codicon-warning').count(), 1);
    await screenshot(page, 'journey-nothing-written-write-anyway');
  } catch (e) {
    await screenshot(page, 'journey-nothing-written-failed').catch(() => undefined);
    throw e;
  }
});
