import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { canvasStats, clearPosted, cspViolations, pageErrors, postFromHost, posted, SHOTS, startHarness, warnings, type Harness } from './harness';

let hx: Harness;

before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

async function openWithRuns(theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark'): Promise<Page> {
  const page = await hx.open('barriers', theme, { width: 340, height: 800 });
  await postFromHost(page, `{ type: 'init', state: { runs: fixtures.runs() } }`);
  await page.waitForSelector('li.run');
  return page;
}

test('empty state tells how to create a run', async () => {
  const page = await hx.open('barriers', 'vscode-dark', { width: 340, height: 500 });
  await postFromHost(page, `{ type: 'init', state: { runs: [] } }`);
  await page.waitForSelector('.empty-state');
  assert.match((await page.textContent('.empty-state')) ?? '', /No runs yet\..*Align with…/s);
  await page.screenshot({ path: join(SHOTS, 'barriers-empty.png') });
  await page.close();
});

test('runs are listed newest first with pair, method, barrier values and a drawn mini chart', async () => {
  const page = await openWithRuns();
  const ids = await page.$$eval('li.run', (els) => els.map((e) => (e as HTMLElement).dataset.runId));
  assert.deepEqual(ids, ['r2', 'r1', 'r3']);
  const r1 = page.locator('li[data-run-id="r1"]');
  assert.match((await r1.textContent()) ?? '', /mlp_a ↔ mlp_b/);
  assert.match((await r1.locator('.barrier').textContent()) ?? '', /naive 1\.2 · aligned 0\.08/);
  assert.match((await r1.locator('.meta').first().textContent()) ?? '', /^weight · /);
  assert.match((await r1.locator('.meta').nth(1).textContent()) ?? '', /12\.5 s on wasm/);
  const s = await canvasStats(page, 'li[data-run-id="r1"] canvas.mini-chart');
  assert.ok(s.opaque > 200, `mini chart drew ${s.opaque} pixels`);
  assert.match((await page.locator('li[data-run-id="r2"]').textContent()) ?? '', /no evaluation data/);
  assert.match((await page.locator('li[data-run-id="r3"]').textContent()) ?? '', /mlp_a \+ mlp_b \+ mlp_c/);
  // A merge computes no curve: its card says what it wrote, not "no evaluation data".
  assert.match((await page.locator('li[data-run-id="r3"]').textContent()) ?? '', /wrote mlp_a\.merged\.safetensors/);
  assert.doesNotMatch((await page.locator('li[data-run-id="r3"]').textContent()) ?? '', /evaluation data/);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('click and Enter open a run; delete and clear all post their messages', async () => {
  const page = await openWithRuns();
  await clearPosted(page);
  await page.locator('li[data-run-id="r1"] .meta').first().click();
  await page.locator('li[data-run-id="r3"]').focus();
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Delete run mlp_a ↔ mlp_c' }).click();
  // ✕ asks first, in the card; Delete confirms.
  await page.locator('li[data-run-id="r2"] .confirm-delete').getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('button', { name: 'Clear all' }).click();
  assert.deepEqual(await posted(page), [
    { type: 'openRun', id: 'r1' },
    { type: 'openRun', id: 'r3' },
    { type: 'deleteRun', id: 'r2' },
    { type: 'clearRuns' },
  ]);
  await page.close();
});

test('update replaces the list; invalid messages are logged and ignored', async () => {
  const page = await openWithRuns();
  await postFromHost(page, `{ type: 'update', state: { runs: [{ id: 'x', kind: 'nope' }] } }`);
  await postFromHost(page, `{ type: 'init' }`);
  await page.waitForFunction(() => (window as unknown as { __warnings: string[] }).__warnings.length >= 2);
  const w = await warnings(page);
  assert.match(w[0], /`state\.runs\[0\]\.kind` must be align, merge, barrier or diff/);
  assert.match(w[1], /`state` must be an object/);
  assert.equal(await page.locator('li.run').count(), 3);
  await postFromHost(page, `{ type: 'update', state: { runs: fixtures.runs().slice(0, 1) } }`);
  await page.waitForFunction(() => document.querySelectorAll('li.run').length === 1);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('screenshots in dark and light themes', async () => {
  for (const theme of ['vscode-dark', 'vscode-light'] as const) {
    const page = await openWithRuns(theme);
    await page.screenshot({ path: join(SHOTS, `barriers-${theme}.png`), fullPage: true });
    await page.close();
  }
});

test('runs of same-named files read apart: whole names, folder, seed, method, time; a cancelled curve says so', async () => {
  const page = await hx.open('barriers', 'vscode-dark', { width: 300, height: 600 });
  await postFromHost(page, `(() => {
    const long = 'resnet20_cifar10_width4_run_2026_11_30';
    const mk = (id, folder, seed, t, extra) => ({ id, kind: 'align', a: long + '_seed0.safetensors', b: long + '_seed1.safetensors', method: 'weight', createdAt: t, backend: 'wasm', seconds: 4.2, folder, seed, ...extra });
    return { type: 'init', state: { runs: [
      mk('x1', 'sweep/lr0.1', 0, '2026-11-30T13:02:05Z', { note: 'Loss curve cancelled.' }),
      mk('x2', 'sweep/lr0.01', 3, '2026-11-30T13:02:41Z', { curve: fixtures.curve(), barrier: { naive: 1.2, aligned: 0.08 } }),
    ] } };
  })()`);
  await page.waitForSelector('li.run');
  const pair = page.locator('li[data-run-id="x1"] .pair');
  const box = await pair.evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth, text: e.textContent }));
  assert.ok(box.scroll <= box.client, 'the names wrap instead of being cut');
  assert.equal(box.text, 'resnet20_cifar10_width4_run_2026_11_30_seed0 ↔ resnet20_cifar10_width4_run_2026_11_30_seed1');
  const meta1 = (await page.locator('li[data-run-id="x1"] .meta').first().textContent()) ?? '';
  const meta2 = (await page.locator('li[data-run-id="x2"] .meta').first().textContent()) ?? '';
  assert.match(meta1, /^sweep\/lr0\.1\/ · weight · seed 0 · /);
  assert.match(meta2, /^sweep\/lr0\.01\/ · weight · seed 3 · /);
  assert.notEqual(meta1.replace(/^.* · /, ''), meta2.replace(/^.* · /, ''), 'times differ (seconds shown)');
  assert.match((await page.locator('li[data-run-id="x1"]').textContent()) ?? '', /Loss curve cancelled\./);
  await page.screenshot({ path: join(SHOTS, 'barriers-similar-runs.png'), fullPage: true });
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('✕ and the Delete key ask first: Keep and Escape put the card back, nothing is deleted', async () => {
  const page = await openWithRuns();
  await clearPosted(page);
  await page.getByRole('button', { name: 'Delete run mlp_a ↔ mlp_c' }).click();
  const box = page.locator('li[data-run-id="r2"] .confirm-delete');
  assert.match((await box.textContent()) ?? '', /Delete this run from the history\? Checkpoint files are kept\./);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep', 'focus on the safe choice');
  await page.locator('li[data-run-id="r2"]').screenshot({ path: join(SHOTS, 'barriers-confirm-delete.png') });
  await box.getByRole('button', { name: 'Keep' }).click();
  assert.equal(await box.count(), 0);
  await page.locator('li[data-run-id="r1"]').focus();
  await page.keyboard.press('Delete');
  await page.locator('li[data-run-id="r1"] .confirm-delete').waitFor();
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('.confirm-delete').count(), 0);
  assert.deepEqual(await posted(page), [], 'nothing deleted, no run opened');
  await page.close();
});

test('Restricted Mode: the empty state says the commands are hidden and how to trust the folder', async () => {
  const page = await hx.open('barriers', 'vscode-light', { width: 340, height: 500 });
  await postFromHost(page, `{ type: 'init', state: { runs: [], trusted: false } }`);
  await page.waitForSelector('.empty-state.restricted');
  const text = (await page.textContent('.empty-state')) ?? '';
  assert.match(text, /Restricted Mode/);
  assert.match(text, /Manage Workspace Trust/);
  assert.doesNotMatch(text, /choose "Align with…"/, 'no advice to run hidden commands');
  await page.screenshot({ path: join(SHOTS, 'barriers-empty-restricted.png') });
  await clearPosted(page);
  await page.getByRole('button', { name: 'Manage Workspace Trust…' }).click();
  assert.deepEqual(await posted(page), [{ type: 'manageTrust' }]);
  // Trusted (or an older host that does not say): the usual advice.
  await postFromHost(page, `{ type: 'update', state: { runs: [], trusted: true } }`);
  await page.waitForFunction(() => !document.querySelector('.restricted'));
  assert.match((await page.textContent('.empty-state')) ?? '', /Align with…/);
  await page.close();
});

test('a run a window reload interrupted says so, with no time or backend made up', async () => {
  const page = await hx.open('barriers', 'vscode-dark', { width: 340, height: 400 });
  await postFromHost(page, `{ type: 'init', state: { runs: [{ id: 'i1', kind: 'align', a: 'mlp_a.safetensors', b: 'mlp_b.safetensors', method: 'weight', createdAt: '2026-12-07T13:10:00Z', backend: 'none', seconds: 0, note: 'Interrupted by a window reload while aligning (started 13:05:09); no result was kept.', interrupted: true }] } }`);
  await page.waitForSelector('li.run');
  const text = (await page.textContent('li.run')) ?? '';
  assert.match(text, /Interrupted by a window reload while aligning/);
  assert.match(text, /interrupted: no time or backend recorded/);
  assert.doesNotMatch(text, /on none/);
  await page.locator('li.run').screenshot({ path: join(SHOTS, 'barriers-interrupted.png') });
  await page.close();
});

test('a diff run\'s card shows the relative change naive and aligned, and opens like any run', async () => {
  const page = await hx.open('barriers', 'vscode-dark', { width: 340, height: 400 });
  await postFromHost(page, `{ type: 'init', state: { runs: [
    { id: 'd1', kind: 'diff', a: 'seed0.safetensors', b: 'seed1.safetensors', method: 'weight', createdAt: '2026-12-07T14:00:00Z', backend: 'wasm', seconds: 2.4, change: { naive: 1.37, aligned: 0.36 }, seed: 0 },
    { id: 'd2', kind: 'diff', a: 'base.safetensors', b: 'tuned.safetensors', method: 'naive', createdAt: '2026-12-07T13:00:00Z', backend: 'wasm', seconds: 0.8, change: { naive: 0.042 } },
  ] } }`);
  await page.waitForSelector('li.run-diff');
  const d1 = page.locator('li[data-run-id="d1"]');
  assert.equal(await d1.locator('.kind').textContent(), 'diff');
  assert.match((await d1.locator('.pair').textContent()) ?? '', /^seed0 ↔ seed1$/);
  assert.equal(await d1.locator('.change').textContent(), 'relative change: naive 137% · aligned 36%');
  assert.match((await d1.textContent()) ?? '', /comparison: open it for the table/);
  assert.equal(await page.locator('li[data-run-id="d2"] .change').textContent(), 'relative change: naive 4.2%');
  assert.match((await page.locator('li[data-run-id="d2"] .meta').first().textContent()) ?? '', /^naive · /);
  await clearPosted(page);
  await d1.click();
  await page.locator('li[data-run-id="d2"]').focus();
  await page.keyboard.press('Enter');
  assert.deepEqual(await posted(page), [{ type: 'openRun', id: 'd1' }, { type: 'openRun', id: 'd2' }]);
  await d1.screenshot({ path: join(SHOTS, 'barriers-diff-run.png') });
  assert.deepEqual(pageErrors(page), []);
  assert.deepEqual(await cspViolations(page), []);
  await page.close();
});
