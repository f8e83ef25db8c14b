import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import {
  canvasStats,
  clearPosted,
  field,
  cspViolations,
  pageErrors,
  parseCsv,
  postFromHost,
  posted,
  SHOTS,
  startHarness,
  warnings,
  type Harness,
} from './harness';

let hx: Harness;

before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

async function openWithInit(theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark', opts = '{}'): Promise<Page> {
  const page = await hx.open('alignment', theme);
  await postFromHost(page, `{ type: 'init', state: fixtures.alignmentState(${opts}) }`);
  await page.waitForSelector('canvas.heatmap');
  return page;
}

/** Mean luminance of the canvas pixel at cell (row, col). */
async function cellLuminance(page: Page, row: number, col: number): Promise<number> {
  return page.evaluate(([r, c]) => {
    const cv = document.querySelector('canvas.heatmap') as HTMLCanvasElement;
    const d = cv.getContext('2d')!.getImageData(c, r, 1, 1).data;
    return (0.2126 * d[0] + 0.7152 * d[1] + 0.0722 * d[2]) / 255;
  }, [row, col]);
}

test('init renders the heatmap into a canvas of the matrix size with a bright diagonal after alignment', async () => {
  const page = await openWithInit();
  const s = await canvasStats(page, 'canvas.heatmap');
  assert.equal(s.width, 64);
  assert.equal(s.height, 64);
  assert.equal(s.opaque, 64 * 64);
  assert.ok(s.colors > 10, `canvas has ${s.colors} colours`);
  assert.equal(await page.getAttribute('canvas.heatmap', 'data-view'), 'after');
  let diag = 0;
  let off = 0;
  for (let i = 0; i < 64; i++) {
    diag += await cellLuminance(page, i, i);
    off += await cellLuminance(page, i, (i + 17) % 64);
  }
  assert.ok(diag / 64 > off / 64 + 0.3, `diagonal ${diag / 64} vs off-diagonal ${off / 64}`);
  // The permutation view lights exactly cell (i, perm[i]).
  await page.click('button.seg[data-view="perm"]');
  const perm = (await page.evaluate('fixtures.alignmentState({}).heatmaps[0].perm')) as number[];
  const lit = await cellLuminance(page, 5, perm[5]);
  const dark = await cellLuminance(page, 5, (perm[5] + 1) % 64);
  assert.ok(lit > dark + 0.2, `perm cell ${lit} vs ${dark}`);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('hovering a cell shows A and B unit indices and the value', async () => {
  const page = await openWithInit();
  const perm = (await page.evaluate('fixtures.alignmentState({}).heatmaps[0].perm')) as number[];
  const box = (await page.locator('canvas.heatmap').boundingBox())!;
  const cell = box.width / 64;
  // After view: row 10, column 20 → A unit 10, B unit perm[20].
  await page.mouse.move(box.x + cell * 20.5, box.y + cell * 10.5);
  const tip = page.locator('.tooltip');
  await tip.waitFor({ state: 'visible' });
  const text = (await tip.textContent()) ?? '';
  assert.match(text, /A unit 10\b/);
  assert.match(text, new RegExp(`B unit ${perm[20]} \\(moved to 20\\)`));
  assert.match(text, /similarity -?\d/);
  await page.click('button.seg[data-view="before"]');
  await page.mouse.move(box.x + cell * 3.5, box.y + cell * 7.5);
  assert.match((await tip.textContent()) ?? '', /A unit 7 · B unit 3 · similarity/);
  await page.mouse.move(box.x - 30, box.y - 30);
  await tip.waitFor({ state: 'hidden' });
  // Keyboard: focus the map, arrows move the cell cursor from the last cell (7, 3).
  await page.locator('canvas.heatmap').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  assert.match((await tip.textContent()) ?? '', /A unit 8 · B unit 4 · similarity/);
  await page.keyboard.press('Escape');
  await tip.waitFor({ state: 'hidden' });
  await page.close();
});

test('a matrix the sender reduced (originalSize > size) shows unit ranges in the tooltip', async () => {
  const page = await hx.open('alignment');
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({ sizes: [16] });
    const h = s.heatmaps[0];
    s.heatmaps = [{ ...h, originalSize: 64, perm: Array.from({ length: 64 }, (_, i) => 63 - i) }];
    return { type: 'init', state: s };
  })()`);
  await page.waitForSelector('canvas.heatmap');
  assert.equal((await canvasStats(page, 'canvas.heatmap')).width, 16);
  const box = (await page.locator('canvas.heatmap').boundingBox())!;
  const cell = box.width / 16;
  await page.mouse.move(box.x + cell * 2.5, box.y + cell * 1.5);
  assert.match((await page.textContent('.tooltip')) ?? '', /^A units 4–7 · B positions 8–11 after alignment · reduced cell -?\d/);
  // The permutation view is drawn from the full 64-entry perm (anti-diagonal).
  await page.click('button.seg[data-view="perm"]');
  assert.equal((await canvasStats(page, 'canvas.heatmap')).width, 64);
  await page.close();
});

test('zoom buttons and the wheel scale the canvas with pixelated rendering', async () => {
  const page = await openWithInit();
  const width = () => page.evaluate(() => (document.querySelector('canvas.heatmap') as HTMLCanvasElement).getBoundingClientRect().width);
  const w0 = await width();
  // Fit: whole pixels per cell, inside 70% of the panel's height (900 px here): 9 px × 64 cells.
  assert.equal(w0, 576);
  await page.click('button[aria-label="Zoom in"]');
  assert.ok((await width()) > w0);
  await page.click('button[aria-label="Fit to view"]');
  assert.equal(await width(), w0);
  const box = (await page.locator('canvas.heatmap').boundingBox())!;
  await page.mouse.move(box.x + 10, box.y + 10);
  await page.mouse.wheel(0, 100);
  await page.waitForFunction((w) => (document.querySelector('canvas.heatmap') as HTMLCanvasElement).getBoundingClientRect().width < w, w0);
  assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector('canvas.heatmap')!).imageRendering), 'pixelated');
  await page.close();
});

test('export buttons post PNG data URLs and parseable CSV', async () => {
  const page = await openWithInit();
  await clearPosted(page);
  const panel = page.locator('.tabpanel');
  await panel.getByRole('button', { name: 'Export PNG' }).click();
  await panel.getByRole('button', { name: 'Matrix CSV' }).click();
  await panel.getByRole('button', { name: 'Permutation CSV' }).click();
  await page.locator('section.curve').getByRole('button', { name: 'Export CSV' }).click();
  await page.locator('section.curve').getByRole('button', { name: 'Export PNG' }).click();
  await page.locator('section.group-table').getByRole('button', { name: 'Export CSV' }).click();
  const msgs = await posted(page);
  assert.deepEqual(msgs.map((m) => m.type), ['exportPng', 'exportCsv', 'exportCsv', 'exportCsv', 'exportPng', 'exportCsv']);
  const dataUrl = field(msgs[0], 'dataUrl');
  assert.match(dataUrl, /^data:image\/png;base64,/);
  assert.equal(Buffer.from(dataUrl.split(',')[1], 'base64').subarray(1, 4).toString(), 'PNG');
  assert.match(field(msgs[0], 'suggestedName'), /P_0-after\.png$/);

  const matrix = parseCsv(field(msgs[1], 'csv'));
  assert.equal(matrix.length, 64);
  assert.ok(matrix.every((r) => r.length === 64));
  const diag = matrix.reduce((a, r, i) => a + Number(r[i]), 0) / 64;
  assert.ok(diag > 0.8, `after-view diagonal mean ${diag}`);

  const perm = (await page.evaluate('fixtures.alignmentState({}).heatmaps[0].perm')) as number[];
  const permCsv = parseCsv(field(msgs[2], 'csv'));
  assert.deepEqual(permCsv[0], ['position', 'b_unit']);
  assert.deepEqual(permCsv.slice(1).map((r) => Number(r[1])), perm);

  const curve = parseCsv(field(msgs[3], 'csv'));
  assert.deepEqual(curve[0], ['lambda', 'naive_loss', 'naive_acc', 'aligned_loss', 'aligned_acc']);
  assert.equal(curve.length, 12);
  assert.equal(Number(curve[6][0]), 0.5);
  assert.ok(Math.abs(Number(curve[6][1]) - 1.3) < 1e-9, 'naive loss peaks at λ = 0.5');

  const groups = parseCsv(field(msgs[5], 'csv'));
  assert.deepEqual(groups.map((r) => r[0]), ['group', 'P_0', 'P_1']);
  assert.equal(Number(groups[1][1]), 64);
  await page.close();
});

test('open-file buttons post openFile with which model', async () => {
  const page = await openWithInit();
  await clearPosted(page);
  await page.getByRole('button', { name: /Open model A/ }).click();
  await page.getByRole('button', { name: /Open model B/ }).click();
  await page.getByRole('button', { name: /Open output/ }).click();
  assert.deepEqual(await posted(page), [{ type: 'openFile', which: 'a' }, { type: 'openFile', which: 'b' }, { type: 'openFile', which: 'out' }]);
  await page.close();
});

test('the interpolation chart is drawn with barrier values in the legend', async () => {
  const page = await openWithInit();
  const s = await canvasStats(page, 'canvas.chart');
  assert.ok(s.width > 100 && s.height > 100);
  assert.ok(s.opaque > 1000, `chart has ${s.opaque} drawn pixels`);
  const labels = await page.evaluate(() => {
    const c = document.querySelector('canvas.chart') as HTMLCanvasElement & { $chartjs?: unknown };
    void c;
    return Array.from(document.querySelectorAll('.barrier')).map((e) => e.textContent);
  });
  assert.ok(labels.some((t) => t?.includes('naive 1.2') && t.includes('aligned 0.08')));
  await page.close();
});

test('without evaluation data the distance plot is drawn', async () => {
  const page = await openWithInit('vscode-dark', '{ distance: true }');
  assert.match((await page.textContent('#curve-h')) ?? '', /distance/);
  const s = await canvasStats(page, 'canvas.chart');
  assert.ok(s.opaque > 1000);
  await page.close();
});

test('group tabs switch with click and arrow keys', async () => {
  const page = await openWithInit();
  const tabs = page.getByRole('tab');
  assert.equal(await tabs.count(), 2);
  await tabs.nth(0).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await tabs.nth(1).getAttribute('aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'P_1');
  assert.equal((await canvasStats(page, 'canvas.heatmap')).width, 32);
  await page.keyboard.press('ArrowRight');
  assert.equal(await tabs.nth(0).getAttribute('aria-selected'), 'true');
  // View radio buttons follow arrow keys too.
  await page.locator('button.seg[aria-checked="true"]').focus();
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.getAttribute('canvas.heatmap', 'data-view'), 'before');
  await page.close();
});

test('invalid messages are rejected and logged without breaking the page', async () => {
  const page = await openWithInit();
  await postFromHost(page, `{ type: 'init', state: { title: 5 } }`);
  await postFromHost(page, `{ type: 'bogus' }`);
  await postFromHost(page, `'not an object'`);
  await postFromHost(page, `(() => { const s = fixtures.alignmentState({}); s.heatmaps[0].perm[0] = s.heatmaps[0].perm[1]; return { type: 'init', state: s }; })()`);
  await page.waitForFunction(() => (window as unknown as { __warnings: string[] }).__warnings.length >= 4);
  const w = await warnings(page);
  assert.match(w[0], /\[rebasin\] rejected message: message: `state.title` must be a string/);
  assert.match(w[1], /bogus/);
  assert.match(w[3], /is not a permutation/);
  // The earlier content is still there and a later valid message still renders.
  assert.equal((await canvasStats(page, 'canvas.heatmap')).width, 64);
  await postFromHost(page, `{ type: 'update', state: fixtures.alignmentState({ sizes: [16], title: 'Second' }) }`);
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Second');
  assert.equal((await canvasStats(page, 'canvas.heatmap')).width, 16);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('theme change re-renders heatmap and chart with the new colours', async () => {
  const page = await openWithInit('vscode-dark');
  await page.click('button.seg[data-view="perm"]');
  const bg = () => page.evaluate(() => Array.from((document.querySelector('canvas.heatmap') as HTMLCanvasElement).getContext('2d')!.getImageData(1, 0, 1, 1).data));
  const perm = (await page.evaluate('fixtures.alignmentState({}).heatmaps[0].perm')) as number[];
  assert.notEqual(perm[0], 1);
  const darkBg = await bg();
  await page.evaluate(() => {
    document.body.className = 'vscode-light';
  });
  await page.waitForFunction((prev) => {
    const d = (document.querySelector('canvas.heatmap') as HTMLCanvasElement).getContext('2d')!.getImageData(1, 0, 1, 1).data;
    return d[0] !== prev[0];
  }, darkBg);
  const lightBg = await bg();
  assert.ok(lightBg[0] > 200 && darkBg[0] < 60, `light ${lightBg} dark ${darkBg}`);
  await page.close();
});

test('state is kept with setState and restored before the host answers', async () => {
  const page = await openWithInit();
  await page.getByRole('tab', { name: 'P_1' }).click();
  const state = await page.evaluate(() => (window as unknown as { __state: unknown }).__state);
  const again = await hx.open('alignment', 'vscode-dark', { initialState: state });
  await again.waitForSelector('canvas.heatmap');
  assert.equal(await again.getByRole('tab', { name: 'P_1' }).getAttribute('aria-selected'), 'true');
  assert.equal((await canvasStats(again, 'canvas.heatmap')).width, 32);
  await page.close();
  await again.close();
});

test('screenshots in dark and light themes', async () => {
  for (const theme of ['vscode-dark', 'vscode-light'] as const) {
    const page = await openWithInit(theme);
    const box = (await page.locator('canvas.heatmap').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.width * 0.3);
    await page.screenshot({ path: join(SHOTS, `alignment-${theme}.png`), fullPage: true });
    await page.close();
  }
});

test('a 4096×4096 heatmap renders in a few seconds', async () => {
  const page = await hx.open('alignment', 'vscode-dark');
  const ms = await page.evaluate(`(async () => {
    const state = fixtures.alignmentState({ sizes: [4096] });
    const t0 = performance.now();
    window.postMessage({ type: 'init', state }, '*');
    while (!(document.querySelector('canvas.heatmap') && document.querySelector('canvas.heatmap').width === 1024)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return { total: performance.now() - t0, render: Number(document.querySelector('canvas.heatmap').dataset.renderMs) };
  })()`) as { total: number; render: number };
  console.log(`4096×4096: first render ${ms.render.toFixed(0)} ms of ${ms.total.toFixed(0)} ms from postMessage to drawn canvas`);
  const s = await canvasStats(page, 'canvas.heatmap');
  assert.equal(s.width, 1024);
  assert.ok(s.colors > 10);
  // Switching views re-renders from the 4096² matrix (block reduction each time).
  const switchMs = await page.evaluate(`(() => {
    const t0 = performance.now();
    document.querySelector('button.seg[data-view="before"]').click();
    return performance.now() - t0;
  })()`) as number;
  console.log(`4096×4096: switch to 'before' view ${switchMs.toFixed(0)} ms`);
  assert.ok(ms.total < 15000, `took ${ms.total} ms`);
  await page.screenshot({ path: join(SHOTS, 'alignment-4096.png') });
  await page.close();
});

test('Fit keeps the heatmap inside a short panel and follows a resize', async () => {
  const page = await hx.open('alignment', 'vscode-dark', { width: 900, height: 420 });
  await postFromHost(page, `{ type: 'init', state: fixtures.alignmentState({}) }`);
  await page.waitForSelector('canvas.heatmap');
  const box = () => page.evaluate(() => {
    const c = document.querySelector('canvas.heatmap') as HTMLCanvasElement;
    const s = document.querySelector('.heatmap-scroll') as HTMLElement;
    return { side: c.getBoundingClientRect().height, inner: window.innerHeight, overflow: s.scrollHeight - s.clientHeight };
  });
  const short = await box();
  assert.ok(short.side <= short.inner * 0.7, `fit heatmap is ${short.side} px in a ${short.inner} px panel`);
  assert.equal(short.overflow, 0, 'no scrolling inside the heatmap at Fit');
  // Zoom in, Fit again: back to the panel's size.
  await page.click('button[aria-label="Zoom in"]');
  await page.click('button[aria-label="Fit to view"]');
  assert.equal((await box()).side, short.side);
  await page.setViewportSize({ width: 1100, height: 1000 });
  await page.waitForFunction((s) => (document.querySelector('canvas.heatmap') as HTMLCanvasElement).getBoundingClientRect().height > s, short.side);
  const tall = await box();
  assert.ok(tall.side <= tall.inner * 0.7 && tall.overflow === 0, `after resize: ${tall.side} px in ${tall.inner} px`);
  await page.setViewportSize({ width: 900, height: 420 });
  await page.screenshot({ path: join(SHOTS, 'alignment-fit-short-panel.png') });
  await page.close();
});

test('the curve arrives after the heatmaps: only the curve section changes', async () => {
  const page = await hx.open('alignment');
  await postFromHost(page, `(() => { const s = fixtures.alignmentState({ distance: true }); s.curveNote = 'Computing the loss curve…'; return { type: 'init', state: s }; })()`);
  await page.waitForSelector('canvas.heatmap');
  // A note ending in "…" is a curve still being computed: the distance plot shows meanwhile.
  assert.match((await page.textContent('.curve-note')) ?? '', /^Computing the loss curve… Meanwhile, the plot shows the distance/);
  await page.click('button[aria-label="Zoom in"]');
  await page.evaluate(() => ((document.querySelector('canvas.heatmap') as HTMLCanvasElement & { mark?: number }).mark = 7));
  await postFromHost(page, `{ type: 'curve', curve: fixtures.curve() }`);
  await page.waitForSelector('section.curve p.barrier');
  assert.match((await page.textContent('section.curve h2')) ?? '', /Loss along the interpolation path/);
  assert.equal(await page.locator('.curve-note').count(), 0);
  assert.equal(await page.evaluate(() => (document.querySelector('canvas.heatmap') as HTMLCanvasElement & { mark?: number }).mark), 7, 'the heatmap was not redrawn from scratch');
  const chart = await canvasStats(page, 'canvas.chart');
  assert.ok(chart.opaque > 500, `curve drawn (${chart.opaque} pixels)`);
  // A cancelled curve: the note says so, the distance plot stays.
  await postFromHost(page, `{ type: 'curve', curveNote: 'Loss curve cancelled.' }`);
  await page.waitForSelector('.curve-note');
  assert.match((await page.textContent('.curve-note')) ?? '', /^Loss curve cancelled\. Instead, the plot/);
  assert.deepEqual(pageErrors(page), []);
  await page.screenshot({ path: join(SHOTS, 'alignment-curve-cancelled.png'), fullPage: true });
  await page.close();
});

test('export file names stay short with long model names', async () => {
  const page = await hx.open('alignment');
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({});
    const long = 'experiment_2026_11_30_resnet20_cifar10_width4_seed_00017_epoch_0200_final_checkpoint_with_ema_weights';
    s.a = { name: long + '_a.safetensors', path: '/w/' + long + '_a.safetensors' };
    s.b = { name: long + '_b.safetensors', path: '/w/' + long + '_b.safetensors' };
    s.title = 'Re-Basin: ' + s.b.name + ' → ' + s.a.name;
    return { type: 'init', state: s };
  })()`);
  await page.waitForSelector('canvas.heatmap');
  await clearPosted(page);
  await page.locator('.tabpanel').getByRole('button', { name: 'Export PNG' }).click();
  await page.locator('section.curve').getByRole('button', { name: 'Export PNG' }).click();
  const names = (await posted(page)).map((m) => field(m, 'suggestedName'));
  for (const n of names) assert.ok(n.length <= 80, `${n} (${n.length} characters)`);
  // The names differ only at the end: that part is kept.
  assert.equal(names[0], 'point_with_ema_weights_b-to-point_with_ema_weights_a-P_0-after.png');
  assert.match(names[1], /-curve\.png$/);
  await page.close();
});

test('a curve still being computed: the points so far, "Barrier so far" and the count; the final curve replaces them', async () => {
  const page = await openWithInit('vscode-dark', '{ distance: true }');
  // The extension sends the λs done on both paths while the curve is computed.
  await postFromHost(page, `(() => {
    const c = fixtures.curve();
    const keep = [0, 1, 2, 3];
    const pick = (p) => ({ loss: keep.map((i) => p.loss[i]), acc: keep.map((i) => p.acc[i]) });
    return { type: 'curve', curve: { lambdas: keep.map((i) => c.lambdas[i]), naive: pick(c.naive), aligned: pick(c.aligned), barrier: { naive: 0.5, aligned: 0.03 } }, curveNote: 'Loss curve: 8 of 22 points…' };
  })()`);
  await page.waitForSelector('p.barrier');
  assert.match((await page.textContent('p.barrier')) ?? '', /^Barrier so far: naive 0\.5, aligned 0\.03$/);
  assert.equal((await page.textContent('.curve-note'))?.trim(), 'Loss curve: 8 of 22 points…');
  assert.equal(await page.locator('section.curve canvas').count(), 1, 'the partial curve is plotted');
  await page.locator('section.curve').screenshot({ path: join(SHOTS, 'alignment-curve-filling.png') });
  await postFromHost(page, `{ type: 'curve', curve: fixtures.curve() }`);
  await page.waitForFunction(() => /^Barrier: /.test(document.querySelector('p.barrier')?.textContent ?? ''));
  assert.equal(await page.locator('.curve-note').count(), 0, 'no note once the curve is complete');
  assert.deepEqual(pageErrors(page), []);
});

test('a gain is given in percent only against a before that is not tiny next to the change', async () => {
  const page = await hx.open('alignment');
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({});
    s.groups = [
      { ...s.groups[0], name: 'P_random', objectiveBefore: 0.01212, objectiveAfter: 2.518 },
      { ...s.groups[0], name: 'P_trained', objectiveBefore: 323.3, objectiveAfter: 380.5 },
    ];
    return { type: 'init', state: s };
  })()`);
  await page.waitForSelector('section.group-table');
  const gains = await page.locator('section.group-table tbody tr td:last-child').allTextContents();
  assert.deepEqual(gains, ['+2.506', '+57.2 (+17.7%)']);
  await page.close();
});

test('the kept state names the panel (its title), so a window reload can find the run when the data is too large to keep', async () => {
  const page = await openWithInit();
  const kept = (await page.evaluate('window.__state')) as { title?: string; data?: string };
  assert.equal(kept.title, 'Align mlp_b onto mlp_a');
  assert.ok(kept.data && kept.data.includes('"title":"Align mlp_b onto mlp_a"'));
  await page.close();
});
