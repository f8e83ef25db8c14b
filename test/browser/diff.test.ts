/**
 * The diff view ("Compare with…") in chromium: totals naive and aligned, the per-layer bar chart
 * (naive vs aligned), sorting by a column, the "changed more than x%" and "only in A/B" filters,
 * the CSV export of what is shown, and the scan's flags marking rows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { DiffState } from '../../webview/protocol';
import { canvasStats, clearPosted, cspViolations, field, pageErrors, parseCsv, postFromHost, posted, SHOTS, startHarness, warnings, type Harness } from './harness';

let hx: Harness;
before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

const fig = (relative: number, cosine: number) => ({ l2: relative * 10, relative, cosine, maxAbs: relative, nonFinite: 0 });
const tensor = (name: string, shape: number[], relative: number, cosine: number) => ({ name, shape, dtype: 'F32', ...fig(relative, cosine) });

/** Two seeds of a 3-layer MLP: large naive changes that alignment mostly removes (the last layer's bias least). */
const state: DiffState = {
  title: 'seed1 vs seed2 (aligned)',
  a: { name: 'seed1.safetensors', path: '/w/seed1.safetensors' },
  b: { name: 'seed2.safetensors', path: '/w/seed2.safetensors' },
  result: {
    a: '/w/seed1.safetensors', b: '/w/seed2.safetensors', seconds: 0.2,
    tensors: [
      tensor('layers.0.weight', [16, 8], 1.41, 0.02), tensor('layers.0.bias', [16], 1.2, 0.1),
      tensor('layers.1.weight', [12, 16], 1.38, 0.05), tensor('layers.1.bias', [12], 0.9, 0.4),
      tensor('layers.2.weight', [3, 12], 1.3, 0.1), tensor('layers.2.bias', [3], 0.3, 0.95),
    ],
    layers: [{ name: 'layers.0', tensors: 2, ...fig(1.4, 0.03) }, { name: 'layers.1', tensors: 2, ...fig(1.35, 0.06) }, { name: 'layers.2', tensors: 2, ...fig(1.25, 0.12) }],
    totals: { name: 'total', tensors: 6, ...fig(1.37, 0.05) },
    mismatches: [], onlyInA: ['head.extra'], onlyInB: ['b.only', 'b.other'], skipped: [],
    aligned: {
      method: 'weight',
      tensors: [
        tensor('layers.0.weight', [16, 8], 0.31, 0.95), tensor('layers.0.bias', [16], 0.2, 0.98),
        tensor('layers.1.weight', [12, 16], 0.42, 0.91), tensor('layers.1.bias', [12], 0.25, 0.97),
        tensor('layers.2.weight', [3, 12], 0.35, 0.94), tensor('layers.2.bias', [3], 0.3, 0.95),
      ],
      layers: [{ name: 'layers.0', tensors: 2, ...fig(0.3, 0.95) }, { name: 'layers.1', tensors: 2, ...fig(0.4, 0.92) }, { name: 'layers.2', tensors: 2, ...fig(0.35, 0.94) }],
      totals: { name: 'total', tensors: 6, ...fig(0.36, 0.93) },
      permutations: [{ name: 'P_layers.0', size: 16, moved: 15 }, { name: 'P_layers.1', size: 12, moved: 11 }],
    },
  },
};

async function openDiff(s: DiffState = state): Promise<Page> {
  const page = await hx.open('diff');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(s)} }`);
  await page.waitForSelector('table.diff-table tbody tr');
  return page;
}

const names = (page: Page): Promise<string[]> => page.$$eval('table.diff-table tbody tr', (rows) => rows.map((r) => r.getAttribute('data-name') ?? ''));

test('totals, per-layer chart naive vs aligned, rows sorted by relative change (largest first)', async () => {
  const page = await openDiff();
  const totals = await page.textContent('.totals');
  assert.match(totals ?? '', /Naive: relative change 137%/);
  assert.match(totals ?? '', /Aligned \(weight matching\): relative change 36%/);
  assert.match(totals ?? '', /Alignment removes 73.7% of the distance \(units moved: 26 of 28\)/);
  assert.deepEqual((await names(page)).slice(0, 6), ['layers.0.weight', 'layers.1.weight', 'layers.2.weight', 'layers.0.bias', 'layers.1.bias', 'layers.2.bias']);
  // Rows of one side only come last, with the side in their figure cells.
  assert.deepEqual((await names(page)).slice(6), ['head.extra', 'b.only', 'b.other']);
  assert.equal(await page.textContent('tr[data-name="head.extra"] td:nth-child(3)'), 'only in A');
  const chart = await page.evaluate(() => (window as unknown as { __diffView: { chartData(): unknown } }).__diffView.chartData());
  assert.deepEqual(chart, {
    labels: ['layers.0', 'layers.1', 'layers.2'],
    datasets: [
      { label: 'naive: ||A−B|| / ||A||', data: [140, 135, 125] },
      { label: 'aligned: ||A−π(B)|| / ||A||', data: [30, 40, 35] },
    ],
  });
  const s = await canvasStats(page, 'canvas.layer-chart');
  assert.ok(s.opaque > 1000 && s.colors > 3, `chart drew ${s.opaque} pixels in ${s.colors} colours`);
  await page.screenshot({ path: join(SHOTS, 'diff-view.png'), fullPage: true });
  assert.deepEqual(pageErrors(page), []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(await warnings(page), []);
});

test('sorting by a column header, both ways', async () => {
  const page = await openDiff();
  await page.click('th[data-key="name"]');
  assert.equal(await page.getAttribute('th[data-key="name"]', 'aria-sort'), 'ascending');
  assert.deepEqual((await names(page)).slice(0, 3), ['b.only', 'b.other', 'head.extra']);
  await page.click('th[data-key="name"]');
  assert.equal(await page.getAttribute('th[data-key="name"]', 'aria-sort'), 'descending');
  assert.equal((await names(page))[0], 'layers.2.weight');
  await page.click('th[data-key="alignedRelative"]');
  assert.deepEqual((await names(page)).slice(0, 2), ['layers.1.weight', 'layers.2.weight']);
});

test('filters: changed more than x%, only in A, only in B; the CSV export holds what is shown', async () => {
  const page = await openDiff();
  await page.fill('input.min-percent', '125');
  assert.deepEqual(await names(page), ['layers.0.weight', 'layers.1.weight', 'layers.2.weight']);
  assert.equal(await page.textContent('.count'), '3 of 9 tensors');
  await clearPosted(page);
  await page.click('button.export-csv');
  const csvMessage = (await posted(page)).find((m) => m.type === 'exportCsv');
  const rows = parseCsv(field(csvMessage, 'csv'));
  assert.deepEqual(rows[0], ['tensor', 'shape', 'dtype', 'side', 'Relative change', 'Cosine', 'Aligned relative', 'Aligned cosine', 'max |A−B|', 'Flags']);
  assert.deepEqual(rows.slice(1).map((r) => [r[0], r[4], r[6]]), [['layers.0.weight', '1.41', '0.31'], ['layers.1.weight', '1.38', '0.42'], ['layers.2.weight', '1.3', '0.35']]);
  assert.equal(field(csvMessage, 'suggestedName'), 'seed1_vs_seed2_aligned.csv');
  await page.fill('input.min-percent', '0');
  await page.selectOption('select.show', 'onlyB');
  assert.deepEqual(await names(page), ['b.only', 'b.other']);
  await page.selectOption('select.show', 'onlyA');
  assert.deepEqual(await names(page), ['head.extra']);
  await clearPosted(page);
  await page.click('button.export-png');
  assert.match(field((await posted(page)).find((m) => m.type === 'exportPng'), 'dataUrl'), /^data:image\/png;base64,/);
});

test('Scan for problems asks the extension; the scan\'s flags mark rows and the flagged filter keeps them', async () => {
  const page = await openDiff();
  await clearPosted(page);
  await page.click('button.scan');
  assert.deepEqual(await posted(page), [{ type: 'scan' }]);
  const scanTensor = (name: string, flags: string[]) => ({ name, dtype: 'F32', shape: [3], count: 3, min: 0, max: 1, mean: 0.5, std: 0.4, nanCount: flags.includes('nan') ? 1 : 0, infCount: 0, zeroCount: 0, flags });
  const scan = (tensors: ReturnType<typeof scanTensor>[]) => ({ path: '/w/x', seconds: 0.1, tensors, dtypes: [], medianStd: 0.4, flagged: tensors.filter((t) => t.flags.length).length, skipped: [], rule: { extremeAbs: 1e4, extremeStdRatio: 100 } });
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify({ ...state, scanA: scan([scanTensor('layers.2.bias', ['nan']), scanTensor('layers.0.bias', [])]), scanB: scan([scanTensor('layers.2.bias', ['extreme'])]) })} }`);
  await page.waitForSelector('tr.flagged');
  assert.equal(await page.textContent('tr[data-name="layers.2.bias"] td:last-child'), 'A: nan; B: extreme');
  assert.match((await page.textContent('.scan-note')) ?? '', /A: 1 of 2 tensors flagged · B: 1 of 1 tensors flagged/);
  await page.selectOption('select.show', 'flagged');
  assert.deepEqual(await names(page), ['layers.2.bias']);
});
