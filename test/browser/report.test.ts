import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { buildReportHtml, REPORT_CSS_FILES, REPORT_SCRIPT_FILE, type ReportData } from '../../webview/reportData';
import { buildOnce, canvasStats, ROOT, SHOTS } from './harness';

let browser: Browser;
let dir: string;
let reportFile: string;

/** Identity-like after-matrix and its column-permuted before-matrix, as real Float32Arrays. */
function reportData(n: number): ReportData {
  const perm = Array.from({ length: n }, (_, i) => (i * 5 + 3) % n);
  const after = new Float32Array(n * n);
  const before = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) after[i * n + j] = i === j ? 1 : 0.1 * Math.cos(i * 3 + j * 7);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) before[i * n + perm[k]] = after[i * n + k];
  const lambdas = Array.from({ length: 11 }, (_, i) => i / 10);
  return {
    title: 'Re-Basin demo report',
    subtitle: 'MLP 784-512-512-512-10 on MNIST, two seeds',
    generatedAt: '2026-11-22T18:00:00.000Z',
    notes: ['Aligned interpolation keeps the loss low all along the path.'],
    tables: [{ title: 'Loss barriers', columns: ['Pair', 'Naive barrier', 'Aligned barrier'], rows: [['seed0 / seed1', 1.234, 0.051], ['seed0 / seed2', 1.1, null]] }],
    alignment: {
      title: 'Align seed1 onto seed0',
      a: { name: 'seed0.safetensors', path: '/m/seed0.safetensors' },
      b: { name: 'seed1.safetensors', path: '/m/seed1.safetensors' },
      method: 'weight', backend: 'wasm', seconds: 2.5, iterations: 5, objectiveBefore: 10, objectiveAfter: 31,
      groups: [{ name: 'P_0', size: n, moved: n - 1, objectiveBefore: 10, objectiveAfter: 31 }],
      heatmaps: [{ name: 'P_0', size: n, perm, before, after }],
      curve: {
        lambdas,
        naive: { loss: lambdas.map((l) => 0.1 + 4 * l * (1 - l)), acc: lambdas.map((l) => 0.98 - 2 * l * (1 - l)) },
        aligned: { loss: lambdas.map((l) => 0.1 + 0.2 * l * (1 - l)), acc: lambdas.map(() => 0.97) },
        barrier: { naive: 1, aligned: 0.05 },
      },
    },
  };
}

before(async () => {
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'rebasin-report-'));
  const css = REPORT_CSS_FILES.map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
  const script = readFileSync(join(ROOT, REPORT_SCRIPT_FILE), 'utf8');
  reportFile = join(dir, 'report.html');
  writeFileSync(reportFile, buildReportHtml(reportData(48), { script, css }));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});
after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the self-contained report draws heatmap, chart and tables from file:// with no requests', async () => {
  for (const scheme of ['dark', 'light'] as const) {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, colorScheme: scheme, deviceScaleFactor: 1 });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(reportFile).href);
    await page.waitForSelector('canvas.heatmap');
    assert.equal(await page.evaluate(() => document.body.classList.contains(`vscode-${matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'}`)), true);
    const s = await canvasStats(page, 'canvas.heatmap');
    assert.equal(s.width, 48);
    const lum = (await page.evaluate(`(() => {
      const d = document.querySelector('canvas.heatmap').getContext('2d').getImageData(0, 0, 48, 48).data;
      const l = (x, y) => { const p = (y * 48 + x) * 4; return 0.2126 * d[p] + 0.7152 * d[p + 1] + 0.0722 * d[p + 2]; };
      let diag = 0, off = 0;
      for (let i = 0; i < 48; i++) { diag += l(i, i); off += l((i + 11) % 48, i); }
      return [diag / 48, off / 48];
    })()`)) as [number, number];
    assert.ok(lum[0] > lum[1] + 60, `diagonal ${lum[0]} vs off ${lum[1]}`);
    assert.ok((await canvasStats(page, 'canvas.chart')).opaque > 1000);
    assert.match((await page.textContent('section.report-table')) ?? '', /seed0 \/ seed11\.2340\.051/);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
    await page.screenshot({ path: join(SHOTS, `report-${scheme}.png`), fullPage: true });
    await page.close();
  }
});
