/**
 * The diff view ("Compare with…") in chromium: totals naive and aligned, the per-layer bar chart
 * (naive vs aligned), sorting by a column, the "changed more than x%" and "only in A/B" filters,
 * the CSV export of what is shown, the scan's flags marking rows, and a clicked matrix's picture
 * (both histograms and the |A−B| heatmap, computed by src/core/diff on real checkpoints).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { DiffState, TensorPicture } from '../../webview/protocol';
import { tensorPicture } from '../../src/core/diff';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../src/core/safetensors';
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

/** The picture of a [16, 8] tensor of two real checkpoints: B = A plus noise, with a block of large changes. */
async function realPicture(): Promise<TensorPicture> {
  const dir = await mkdtemp(join(tmpdir(), 'rebasin-diff-picture-'));
  try {
    const a = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i * 0.7));
    const b = a.map((v, i) => v + 0.05 * Math.cos(i * 1.9) + (i >= 40 && i < 44 ? 1.5 : 0));
    const files = [join(dir, 'a.safetensors'), join(dir, 'b.safetensors')];
    for (const [f, v] of [[files[0], a], [files[1], b]] as const) await writeSafetensors(f, [{ name: 'layers.0.weight', dtype: 'F32', shape: [16, 8], read: async () => encodeFromFloat32('F32', v) }]);
    const [x, y] = [await openCheckpoint(files[0]), await openCheckpoint(files[1])];
    try {
      return await tensorPicture(x, y, 'layers.0.weight', { bins: 32 });
    } finally {
      await x.close();
      await y.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('clicking a matrix\'s row asks for its picture and shows both histograms and the |A−B| heatmap; vectors are not drawn', async () => {
  const withPerms: DiffState = { ...state, result: { ...state.result, aligned: { ...state.result.aligned!, perms: { 'P_layers.0': Array.from({ length: 16 }, (_, i) => 15 - i) } } } };
  const page = await openDiff(withPerms);
  await clearPosted(page);
  await page.click('tr[data-name="layers.0.bias"]');
  await page.click('tr[data-name="layers.0.weight"]');
  assert.deepEqual(await posted(page), [{ type: 'showTensor', tensor: 'layers.0.weight' }]);
  assert.match((await page.textContent('.tensor-picture')) ?? '', /Drawing layers\.0\.weight/);
  assert.equal(await page.getAttribute('tr[data-name="layers.0.weight"]', 'class'), 'drawable selected');
  const picture = await realPicture();
  await postFromHost(page, `{ type: 'tensor', picture: ${JSON.stringify(picture)} }`);
  await page.waitForSelector('.tensor-picture canvas.diff-heatmap');
  assert.deepEqual(await page.$$eval('.tensor-picture figcaption', (els) => els.map((e) => e.textContent)), ['A', 'π(B)', '|A−π(B)|: 16 × 8 cells, one cell per element']);
  for (const sel of ['canvas.hist-a', 'canvas.hist-b']) {
    const s = await canvasStats(page, `.tensor-picture ${sel}`);
    assert.ok(s.opaque > 500 && s.colors >= 2, `${sel} drew ${s.opaque} pixels in ${s.colors} colours`);
  }
  const heat = await canvasStats(page, '.tensor-picture canvas.diff-heatmap');
  assert.deepEqual([heat.width, heat.height, heat.opaque], [8, 16, 128]);
  assert.ok(heat.colors > 10, `heatmap has ${heat.colors} colours`);
  // The four large changes (elements 40..43: row 5, columns 0..3) are the map's brightest cells (viridis yellow).
  const bright = await page.evaluate(() => {
    const c = document.querySelector('.tensor-picture canvas.diff-heatmap') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length / 4; i++) if (d[i * 4] > 200 && d[i * 4 + 1] > 200) out.push(i);
    return out;
  });
  assert.deepEqual(bright, [40, 41, 42, 43]);
  await page.locator('.tensor-picture').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'diff-tensor-picture.png'), fullPage: true });
  // A picture of another tensor than the chosen one (a late answer) is ignored; an error is shown in place.
  await postFromHost(page, `{ type: 'tensor', picture: ${JSON.stringify({ ...picture, tensor: 'layers.1.weight' })} }`);
  assert.equal(await page.getAttribute('.tensor-picture', 'data-tensor'), 'layers.0.weight');
  await page.click('tr[data-name="layers.1.weight"]');
  await postFromHost(page, `{ type: 'tensorError', tensor: 'layers.1.weight', message: 'b.safetensors: cannot open for reading' }`);
  await page.waitForSelector('.tensor-picture .error');
  assert.equal(await page.textContent('.tensor-picture .error'), 'Could not draw layers.1.weight: b.safetensors: cannot open for reading');
  assert.deepEqual(pageErrors(page), []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(await warnings(page), []);
});
