// "Compare with…" in a real VS Code (code-server + chromium), clicked as a person does: right-click
// a.safetensors → Compare with… → b.safetensors (a permutation of A: the same network, its hidden
// units reordered) → "Align first, then compare". The diff view lists every tensor; naively B looks
// far from A, aligned it is A again; the per-layer chart is drawn; sorting and the filters change
// the table; "Export CSV" and "Export chart PNG" go through the real save dialog and write files
// that hold what the view showed. Screenshots land in test-results/journey-compare-*.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { canvasPixels, explorerRow, findFrame, menuItemThenPick, notification, pickRow, screenshot, shotOnFailure, startWorkbenchRetrying, type Workbench } from '../harness/workbench';
import { writeMlp, writePermuted } from './checkpoints';

/** What `slug` (webview/format.ts) makes of the view's title "a.safetensors vs b.safetensors (aligned)". */
const CSV_NAME = 'a.safetensors_vs_b.safetensors_aligned.csv';
const PNG_NAME = 'a.safetensors_vs_b.safetensors_aligned-layers.png';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** RFC 4180 fields (quotes doubled inside quoted fields), enough for the view's CSV. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split('\n').filter((l) => l.length > 0)) {
    const fields: string[] = [];
    for (const m of line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)) {
      fields.push(m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1]);
      if (m[2] === '') break;
    }
    rows.push(fields);
  }
  return rows;
}

/** The table's cells as the user sees them (header first). */
async function tableText(frame: Frame): Promise<{ head: string[]; rows: string[][] }> {
  return frame.locator('table.diff-table').evaluate((t) => ({
    head: [...t.querySelectorAll('thead th')].map((th) => (th.textContent ?? '').replace(/ [▲▼]$/, '').trim()),
    rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())),
  }));
}

/** "12.5%" → 12.5 (the view's percentages). */
const percent = (cell: string): number => {
  assert.match(cell, /^[\d.e+-]+%$/, `a percentage, got "${cell}"`);
  return Number(cell.slice(0, -1));
};

/**
 * Accepts VS Code's save dialog as proposed. Over a remote (code-server) it is the simple file
 * dialog: a quick input holding the proposed path; Enter saves there.
 */
async function acceptSaveDialog(page: Page, expectedName: string): Promise<void> {
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await page.waitForFunction((name) => (document.querySelector('.quick-input-widget input') as HTMLInputElement | null)?.value.endsWith(name) ?? false, expectedName, { timeout: 15_000 });
  await screenshot(page, `journey-compare-save-${expectedName.endsWith('.csv') ? 'csv' : 'png'}`);
  await input.press('Enter');
}

let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-compare-'));
  // A wider MLP than the other journeys' so that the chart has three layers with visible bars.
  await writeMlp(join(workspace, 'a.safetensors'), 1, [16, 48, 48, 48, 8]);
  await writePermuted(join(workspace, 'a.safetensors'), join(workspace, 'b.safetensors'), 7);
  mkdirSync(join(workspace, '.vscode'));
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'rebasin.workers': 1 }));
  wb = await startWorkbenchRetrying({ workspace, extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH }, 'journey-compare');
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

let view: Frame | undefined;

test('right-click A → Compare with… → B → align first: the diff view shows B is A permuted', async () => {
  assert.ok(wb);
  const { page } = wb;
  await menuItemThenPick(page, 'a.safetensors', 'Compare with…', 'b.safetensors', 'journey-compare-pick');
  await shotOnFailure(page, 'journey-compare-align', () => pickRow(page, 'Align first, then compare'));
  view = await shotOnFailure(page, 'journey-compare-view', () => findFrame(page, 'table.diff-table tbody tr', 120_000));
  await page.waitForTimeout(1_000);
  await screenshot(page, 'journey-compare-view');

  await view.locator('h1', { hasText: 'a.safetensors vs b.safetensors (aligned)' }).waitFor({ state: 'visible', timeout: 10_000 });
  const { head, rows } = await tableText(view);
  assert.deepEqual(head, ['Tensor', 'Shape', 'Relative change', 'Cosine', 'Aligned relative', 'Aligned cosine', 'max |A−B|', 'Flags']);
  const names = rows.map((r) => r[0]).sort();
  assert.deepEqual(names, ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight', 'fc3.bias', 'fc3.weight', 'fc4.bias', 'fc4.weight']);
  assert.equal(await view.locator('.count').textContent(), '8 of 8 tensors');
  // Every tensor a permutation moves is far from A naively and equal to A's once aligned. (The
  // output layer's bias is never permuted: it is A's in both columns.)
  for (const [name, , naive, , aligned] of rows) {
    assert.ok(percent(aligned) < 1e-3, `${name}: aligned relative change ${aligned}, expected about 0`);
    if (name !== 'fc4.bias') assert.ok(percent(naive) > 20, `${name}: naive relative change ${naive}, expected large`);
  }
  const totals = (await view.locator('.totals').textContent()) ?? '';
  assert.match(totals, /Aligned \(weight matching\)/);
  assert.match(totals, /Alignment removes 100(\.0+)?% of the distance/);

  // The per-layer chart: two series (naive red, aligned blue), drawn.
  const px = await canvasPixels(view, 'canvas.layer-chart');
  assert.ok(px.width > 200 && px.height > 100, `chart canvas ${px.width}x${px.height}`);
  assert.ok(px.nonBlank > 1000 && px.colours > 5, `chart drawn (${px.nonBlank} pixels, ${px.colours} colours)`);
  const chart = await view.evaluate(() => (window as unknown as { __diffView: { chartData(): { labels: string[]; datasets: { label: string; data: number[] }[] } } }).__diffView.chartData());
  assert.equal(chart.datasets.length, 2);
  assert.ok(chart.labels.length >= 3, `layers: ${chart.labels.join(', ')}`);
  assert.ok(chart.datasets[0].data.some((x) => x > 20) && chart.datasets[1].data.every((x) => x < 1e-3), `naive bars tall, aligned flat: ${JSON.stringify(chart.datasets.map((d) => d.data))}`);
});

test('sorting by a column header and the filters change the table', async () => {
  assert.ok(wb && view);
  const { page } = wb;
  const frame = view;
  // Default: by relative change, largest first.
  let rows = (await tableText(frame)).rows;
  const naive = rows.map((r) => percent(r[2]));
  assert.deepEqual(naive, [...naive].sort((x, y) => y - x), 'sorted by relative change, descending');
  // Click "Tensor": by name, A to Z; again: Z to A.
  await frame.locator('th[data-key="name"]').click();
  rows = (await tableText(frame)).rows;
  assert.deepEqual(rows.map((r) => r[0]), ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight', 'fc3.bias', 'fc3.weight', 'fc4.bias', 'fc4.weight']);
  assert.equal(await frame.locator('th[data-key="name"]').getAttribute('aria-sort'), 'ascending');
  await frame.locator('th[data-key="name"]').click();
  rows = (await tableText(frame)).rows;
  assert.equal(rows[0][0], 'fc4.weight');
  assert.equal(await frame.locator('th[data-key="name"]').getAttribute('aria-sort'), 'descending');
  // "Changed more than x %": a threshold in the widest gap between the (rounded) changes shown,
  // so that rounding cannot put a tensor on the wrong side.
  const moved = naive.filter((x) => x > 0).sort((x, y) => x - y);
  let gap = 0;
  for (let i = 1; i < moved.length; i++) if (moved[i] - moved[i - 1] > moved[gap + 1] - moved[gap]) gap = i - 1;
  const threshold = (moved[gap] + moved[gap + 1]) / 2;
  await frame.locator('input.min-percent').fill(String(threshold));
  rows = (await tableText(frame)).rows;
  const expected = naive.filter((x) => x > threshold).length;
  assert.ok(expected > 0 && expected < naive.length);
  assert.equal(rows.length, expected);
  assert.ok(rows.every((r) => percent(r[2]) > threshold));
  assert.equal(await frame.locator('.count').textContent(), `${expected} of 8 tensors`);
  await screenshot(page, 'journey-compare-filtered');
  // Only in A: none here (B holds the same tensors).
  await frame.locator('select.show').selectOption('onlyA');
  assert.equal((await tableText(frame)).rows.length, 0);
  assert.equal(await frame.locator('.count').textContent(), '0 of 8 tensors');
  // Back to everything, sorted by name A to Z, for the export.
  await frame.locator('select.show').selectOption('all');
  await frame.locator('input.min-percent').fill('0');
  await frame.locator('th[data-key="name"]').click();
  assert.equal((await tableText(frame)).rows.length, 8);
});

test('Export CSV and Export chart PNG save through the save dialog; the files hold the table and the chart', async () => {
  assert.ok(wb && view);
  const { page } = wb;
  const frame = view;
  const shown = await tableText(frame);

  await frame.locator('button.export-csv').click();
  await shotOnFailure(page, 'journey-compare-save-csv', () => acceptSaveDialog(page, CSV_NAME));
  await shotOnFailure(page, 'journey-compare-saved-csv', () => notification(page, `saved ${CSV_NAME}`));
  const csvFile = join(workspace, CSV_NAME);
  assert.ok(existsSync(csvFile), `${csvFile} written`);
  const table = parseCsv(readFileSync(csvFile, 'utf8'));
  assert.deepEqual(table[0], ['tensor', 'shape', 'dtype', 'side', 'Relative change', 'Cosine', 'Aligned relative', 'Aligned cosine', 'max |A−B|', 'Flags']);
  const body = table.slice(1);
  assert.equal(body.length, shown.rows.length);
  body.forEach((row, i) => {
    const seen = shown.rows[i];
    assert.equal(row.length, 10, `row ${i + 1}: ${row.join(' | ')}`);
    assert.equal(row[0], seen[0], 'same tensor, same order as the table');
    assert.equal(row[1], seen[1], `${row[0]}: shape`);
    assert.equal(row[2], 'F32');
    assert.equal(row[3], 'both');
    // Unrounded fractions in the file, rounded percentages on screen.
    const naive = Number(row[4]);
    const aligned = Number(row[6]);
    assert.ok(Number.isFinite(naive) && Number.isFinite(aligned), `${row[0]}: numbers`);
    assert.ok(Math.abs(100 * naive - percent(seen[2])) <= 0.01 * Math.max(1, 100 * naive), `${row[0]}: CSV ${naive} vs view ${seen[2]}`);
    assert.ok(aligned < 1e-5, `${row[0]}: aligned ${aligned}`);
  });

  // Dismiss the notification centre so the view's buttons are reachable again.
  await page.keyboard.press('Escape');
  await frame.locator('button.export-png').click();
  await shotOnFailure(page, 'journey-compare-save-png', () => acceptSaveDialog(page, PNG_NAME));
  await shotOnFailure(page, 'journey-compare-saved-png', () => notification(page, `saved ${PNG_NAME}`));
  const pngFile = join(workspace, PNG_NAME);
  assert.ok(existsSync(pngFile), `${pngFile} written`);
  const png = readFileSync(pngFile);
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, 'PNG signature');
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
  const canvas = await canvasPixels(frame, 'canvas.layer-chart');
  assert.deepEqual([width, height], [canvas.width, canvas.height], 'the PNG is the chart canvas, pixel for pixel');
  assert.ok(statSync(pngFile).size > 2_000, `PNG of ${statSync(pngFile).size} bytes`);
  assert.ok(png.subarray(-8, -4).toString('latin1') === 'IEND', 'PNG ends with IEND');
  await explorerRow(page, PNG_NAME).waitFor({ state: 'visible', timeout: 30_000 });
  await screenshot(page, 'journey-compare-exported');
});
