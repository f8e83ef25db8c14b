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

async function openWithInit(theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark', opts = '{}'): Promise<Page> {
  const page = await hx.open('inspector', theme);
  await postFromHost(page, `{ type: 'init', state: fixtures.inspectorState(${opts}) }`);
  await page.waitForSelector('table.tensors');
  return page;
}

test('tensors are grouped by module prefix with subtotals, totals, metadata and architecture', async () => {
  const page = await openWithInit();
  const prefixes = await page.$$eval('button.group-toggle', (els) => els.map((e) => e.textContent));
  assert.deepEqual(prefixes, ['layers.0', 'layers.1', 'layers.2', 'layers.3', 'head', '(top level)']);
  const layer0 = page.locator('tbody.group', { has: page.locator('button[data-prefix="layers.0"]') });
  // 512*784 + 512 params, 4 bytes each.
  assert.match((await layer0.textContent()) ?? '', /2 tensors401,920(1\.6 MB)/);
  assert.match((await page.textContent('tfoot')) ?? '', /Total: 11 tensors/);
  assert.match((await page.textContent('.meta-table')) ?? '', /trained <b>seed 0<\/b>/);
  assert.equal(await page.locator('.meta-table b').count(), 0, 'metadata is text, not markup');
  assert.match((await page.textContent('.perm-table')) ?? '', /P_0512/);
  assert.match((await page.locator('main').textContent()) ?? '', /mlp/);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('groups collapse and expand from their header buttons', async () => {
  const page = await openWithInit();
  const toggle = page.locator('button[data-prefix="layers.1"]');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.locator('tr.tensor[data-tensor="layers.1.weight"]').isVisible(), true);
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.locator('tr.tensor[data-tensor="layers.1.weight"]').count(), 0);
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.locator('tr.tensor[data-tensor="layers.1.weight"]').isVisible(), true);
  await page.getByRole('button', { name: 'Collapse all' }).click();
  assert.equal(await page.locator('tr.tensor').count(), 0);
  await page.close();
});

test('stats request posts requestStats and the answer renders numbers and a histogram', async () => {
  const page = await openWithInit();
  await clearPosted(page);
  await page.getByRole('button', { name: 'Statistics of layers.2.weight' }).click();
  assert.deepEqual(await posted(page), [{ type: 'requestStats', tensor: 'layers.2.weight' }]);
  const row = page.locator('tr.stats-row[data-stats-for="layers.2.weight"]');
  assert.match((await row.textContent()) ?? '', /Computing statistics/);
  await postFromHost(page, `{ type: 'stats', tensor: 'layers.2.weight', stats: fixtures.stats('layers.2.weight') }`);
  await row.locator('canvas.histogram').waitFor();
  const text = (await row.textContent()) ?? '';
  for (const re of [/count262,144/, /min-0\.2/, /max0\.2/, /mean0\.0012/, /std0\.05/, /NaN0/, /Inf0/]) assert.match(text, re);
  const s = await canvasStats(page, 'tr.stats-row[data-stats-for="layers.2.weight"] canvas.histogram');
  assert.ok(s.opaque > 1000, `histogram drew ${s.opaque} pixels`);
  // An error answer for another tensor.
  await page.getByRole('button', { name: 'Statistics of head.bias' }).click();
  await postFromHost(page, `{ type: 'statsError', tensor: 'head.bias', message: 'model.safetensors: tensor \`head.bias\` could not be read' }`);
  await page.locator('tr.stats-row[data-stats-for="head.bias"] .error').waitFor();
  // Stats survive collapsing and re-opening the group.
  await page.locator('button[data-prefix="layers.2"]').click();
  await page.locator('button[data-prefix="layers.2"]').click();
  await row.locator('canvas.histogram').waitFor();
  await page.screenshot({ path: join(SHOTS, 'inspector-stats-vscode-dark.png'), fullPage: true });
  await page.close();
});

test('filter box narrows tensors by name', async () => {
  const page = await openWithInit();
  await page.getByRole('searchbox', { name: 'Filter tensors by name' }).fill('bias');
  const names = await page.$$eval('tr.tensor', (els) => els.map((e) => (e as HTMLElement).dataset.tensor));
  assert.deepEqual(names, ['layers.0.bias', 'layers.1.bias', 'layers.2.bias', 'layers.3.bias', 'head.bias']);
  assert.equal(await page.locator('button[data-prefix="(top level)"]').isVisible(), false);
  await page.getByRole('searchbox', { name: 'Filter tensors by name' }).fill('');
  assert.equal(await page.locator('tr.tensor').count(), 11);
  await page.close();
});

test('thousands of tensors render lazily and quickly', async () => {
  const page = await hx.open('inspector');
  const ms = (await page.evaluate(`(() => {
    const state = fixtures.inspectorState({ extra: 20000 });
    const t0 = performance.now();
    window.dispatchEvent(new MessageEvent('message', { data: { type: 'init', state } }));
    return performance.now() - t0;
  })()`)) as number;
  console.log(`inspector: 20011 tensors rendered in ${ms.toFixed(0)} ms`);
  assert.equal(await page.locator('button.group-toggle').count(), 206);
  assert.equal(await page.locator('tr.tensor').count(), 0, 'groups start collapsed above 200 tensors');
  await page.locator('button[data-prefix="blocks.7.attn"]').click();
  assert.equal(await page.locator('tr.tensor').count(), 100);
  assert.ok(ms < 5000);
  await page.close();
});

test('error state and invalid messages', async () => {
  const page = await hx.open('inspector');
  await postFromHost(page, `{ type: 'stats', tensor: 'x' }`);
  await postFromHost(page, `{ type: 'init', state: { path: '/x.safetensors', format: 'safetensors', metadata: {}, tensors: [{ name: 'a', dtype: 'F32', shape: [-1] }], totalParams: 0, totalBytes: 0 } }`);
  await page.waitForFunction(() => (window as unknown as { __warnings: string[] }).__warnings.length >= 2);
  const w = await warnings(page);
  assert.match(w[0], /`message\.stats` must be an object/);
  assert.match(w[1], /`state\.tensors\[0\]\.shape\[0\]` must be an integer/);
  await postFromHost(page, `{ type: 'init', state: { path: '/x.safetensors', format: 'safetensors', metadata: {}, tensors: [], totalParams: 0, totalBytes: 0, error: 'x.safetensors: header length 9999999999 exceeds the file size' } }`);
  await page.locator('.error').waitFor();
  assert.match((await page.textContent('.error')) ?? '', /header length/);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('screenshots in dark and light themes', async () => {
  for (const theme of ['vscode-dark', 'vscode-light'] as const) {
    const page = await openWithInit(theme);
    await page.screenshot({ path: join(SHOTS, `inspector-${theme}.png`), fullPage: true });
    await page.close();
  }
});

test('statistics: progress in place, one computation per tensor, Cancel', async () => {
  const page = await openWithInit();
  await clearPosted(page);
  const button = page.getByRole('button', { name: 'Statistics of layers.1.weight', exact: true });
  await button.click();
  assert.equal(await button.isDisabled(), true, 'Stats is disabled while it runs');
  await button.click({ force: true });
  assert.deepEqual(await posted(page), [{ type: 'requestStats', tensor: 'layers.1.weight' }], 'a second click posts nothing');
  const row = page.locator('tr.stats-row[data-stats-for="layers.1.weight"]');
  const cancel = row.getByRole('button', { name: 'Cancel statistics of layers.1.weight' });
  await page.evaluate(() => ((document.querySelector('button.stats-cancel') as HTMLElement & { mark?: number }).mark = 1));
  await postFromHost(page, `{ type: 'statsProgress', tensor: 'layers.1.weight', fraction: 0.25, message: 'Statistics (pass 1 of 2): 2.50 GiB of 10.0 GiB read' }`);
  await row.locator('.stats-message', { hasText: '2.50 GiB of 10.0 GiB read (25%)' }).waitFor();
  assert.equal(await row.locator('progress').evaluate((p) => (p as HTMLProgressElement).value), 0.25);
  assert.equal(await page.evaluate(() => (document.querySelector('button.stats-cancel') as HTMLElement & { mark?: number }).mark), 1, 'updated in place: the Cancel button under the pointer stays');
  // Once the rate is measured, the time left comes with the percentage.
  await postFromHost(page, `{ type: 'statsProgress', tensor: 'layers.1.weight', fraction: 0.3, message: 'Statistics (pass 1 of 2): 3.00 GiB of 10.0 GiB read', timeLeft: 'about 40 s left' }`);
  await row.locator('.stats-message', { hasText: '3.00 GiB of 10.0 GiB read (30%, about 40 s left)' }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'inspector-stats-progress.png') });
  await cancel.click();
  assert.deepEqual((await posted(page)).slice(1), [{ type: 'cancelStats', tensor: 'layers.1.weight' }]);
  assert.match((await cancel.textContent()) ?? '', /Cancelling…/);
  await postFromHost(page, `{ type: 'statsCancelled', tensor: 'layers.1.weight' }`);
  await row.locator('text=Statistics of layers.1.weight cancelled.').waitFor();
  assert.equal(await button.isDisabled(), false, 'Stats can be clicked again');
  // Out-of-range progress is rejected, not drawn.
  await postFromHost(page, `{ type: 'statsProgress', tensor: 'layers.1.weight', fraction: 3 }`);
  await page.waitForFunction(() => (window as unknown as { __warnings: string[] }).__warnings.length >= 1);
  assert.match((await warnings(page))[0], /`message\.fraction` must be between 0 and 1/);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('a file that is not safetensors shows only its name and why, no sizes', async () => {
  const page = await hx.open('inspector');
  await postFromHost(page, `{ type: 'init', state: { path: '/w/pytorch_model.safetensors', format: 'safetensors', metadata: {}, tensors: [], totalParams: 0, totalBytes: 0, error: 'pytorch_model.safetensors: not a safetensors file (its first 8 bytes are not a header length)' } }`);
  await page.locator('.error').waitFor();
  const text = (await page.textContent('main')) ?? '';
  assert.match(text, /not a safetensors file/);
  assert.doesNotMatch(text, /Size|0 B|\d{12,}/);
  await page.screenshot({ path: join(SHOTS, 'inspector-not-safetensors.png') });
  await page.close();
});

test('a checkpoint without hidden units says so instead of a family with 0 groups', async () => {
  const page = await hx.open('inspector');
  await postFromHost(page, `{ type: 'init', state: { path: '/w/linear.safetensors', format: 'safetensors', metadata: {}, tensors: [{ name: 'weight', dtype: 'F32', shape: [10, 784] }], totalParams: 7840, totalBytes: 31360, architecture: { family: 'No hidden units to permute (a single layer): nothing to align', perms: {}, symmetryLog10: 0 } } }`);
  await page.waitForSelector('table.tensors');
  const arch = (await page.locator('section[aria-labelledby="arch-h"]').textContent()) ?? '';
  assert.match(arch, /No hidden units to permute/);
  assert.doesNotMatch(arch, /Permutation groups|MLP/);
  await page.close();
});

test('Scan for problems posts scan; the result marks flagged tensors, and "only flagged" narrows the table to them', async () => {
  const page = await openWithInit();
  await clearPosted(page);
  await page.getByRole('button', { name: 'Scan for problems' }).click();
  assert.deepEqual(await posted(page), [{ type: 'scan' }]);
  assert.equal(await page.textContent('.scan-bar'), 'Scanning every tensor…');
  const t = (name: string, flags: string[]) => ({ name, dtype: 'F32', shape: [512], count: 512, min: 0, max: 0, mean: 0, std: 0, nanCount: flags.includes('nan') ? 3 : 0, infCount: 0, zeroCount: flags.includes('all-zero') ? 512 : 0, flags });
  const scan = {
    path: '/home/user/models/mlp_a.safetensors', seconds: 0.3, medianStd: 0.02, flagged: 2, skipped: [], rule: { extremeAbs: 1e4, extremeStdRatio: 100 },
    dtypes: [{ dtype: 'F32', tensors: 8, params: 1000, bytes: 4000 }],
    tensors: [t('layers.0.bias', ['all-zero']), t('layers.2.weight', ['nan']), t('layers.1.bias', [])],
  };
  await postFromHost(page, `{ type: 'scan', scan: ${JSON.stringify(scan)} }`);
  await page.waitForSelector('tr.tensor.flagged');
  assert.equal(await page.textContent('.scan-bar'), 'Scan: 2 of 3 tensors flagged (all-zero: 1, nan: 1).  Only flagged tensors');
  assert.deepEqual(await page.$$eval('tr.tensor', (rows) => rows.map((r) => [r.getAttribute('data-tensor'), r.getAttribute('data-flags')])), [['layers.0.bias', 'all-zero'], ['layers.2.weight', 'nan']]);
  await page.uncheck('input.only-flagged');
  assert.equal(await page.locator('tr.tensor').count(), 11);
  assert.equal(await page.locator('tr.tensor.flagged').count(), 2);
  await page.screenshot({ path: join(SHOTS, 'inspector-scan.png') });
  await postFromHost(page, `{ type: 'scanStopped', message: 'Scan cancelled.' }`);
  assert.equal(await page.textContent('.scan-bar'), 'Scan cancelled.');
  assert.deepEqual(pageErrors(page), []);
  assert.deepEqual(await warnings(page), []);
  await page.close();
});
