/**
 * The alignment panel of an orthogonal alignment (`--symmetry orthogonal`): the state built by the
 * extension (panelState.alignmentState) from an align result's `orthogonal` maps, rendered from an
 * `init` message: one table row per map with how far it is from a permutation, the picture of |R|
 * of the map picked (selector or the map's name in the table, cells read by keyboard), A' with its button.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { clearPosted, cspViolations, pageErrors, parseCsv, postFromHost, posted, SHOTS, startHarness, warnings, type Harness } from './harness';
import { alignmentState } from '../../src/extension/panelState';
import { randomOrthogonal } from '../../src/core/symmetry';
import { withPictures } from '../../src/core/symmetry/mapPictures';
import { mulberry32 } from '../../src/core/matching/prng';
import { stringifyWithFloats } from '../../shared/float32Json';
import { fmt } from '../../webview/format';
import type { AlignResult } from '../../src/engine/protocol';

let hx: Harness;
before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

const ok = { maxAbsDiff: 1e-6, relDiff: 1e-7, ok: true, batch: 'data' as const };
/** The permutation layer 1's VO map of head 1 is (its |R| has one 1 per row). */
const HEAD_PERM = Array.from({ length: 32 }, (_, i) => (i * 7 + 3) % 32);
const D = 512;

function rowMaxMean(r: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.max(...Array.from(r.subarray(i * n, (i + 1) * n), Math.abs));
  return s / n;
}

/**
 * A residual stream that is a permutation of B's directions followed, on half of the pairs, by a
 * rotation in the pair's plane (cos 0.6, sin 0.8): half its rows are a permutation's, half spread.
 */
function residualMap(): Float64Array {
  const r = new Float64Array(D * D);
  const cols = Array.from({ length: D }, (_, i) => (i * 5 + 11) % D);
  for (let k = 0; k < D; k += 2) {
    const [c, s] = k % 4 === 0 ? [1, 0] : [0.6, 0.8];
    r[k * D + cols[k]] = c;
    r[k * D + cols[k + 1]] = s;
    r[(k + 1) * D + cols[k]] = -s;
    r[(k + 1) * D + cols[k + 1]] = c;
  }
  return r;
}

/** What align --symmetry orthogonal returns for a 2-layer GPT-2 with 2 heads (d = 512, head dim 32); `pictures`: as the extension asks for (includeMatrices). */
function orthogonalResult(pictures = true): AlignResult {
  const random = mulberry32(4);
  const head = (l: number, kind: 'qk' | 'vo', h: number): Float64Array => {
    if (l === 1 && kind === 'vo' && h === 1) {
      const p = new Float64Array(32 * 32);
      HEAD_PERM.forEach((j, i) => (p[i * 32 + j] = i % 3 === 0 ? -1 : 1));
      return p;
    }
    return randomOrthogonal(32, random);
  };
  const maps = {
    residual: residualMap(),
    qk: [0, 1].map((l) => [0, 1].map((h) => head(l, 'qk', h))),
    vo: [0, 1].map((l) => [0, 1].map((h) => head(l, 'vo', h))),
  };
  const summary = (r: Float64Array, n: number, before: number, after: number) => ({ size: n, rowMaxMean: rowMaxMean(r, n), objectiveBefore: before, objectiveAfter: after });
  const summaries = {
    residual: summary(maps.residual, D, 12.5, 40.25),
    qk: maps.qk.map((row, l) => row.map((r, h) => summary(r, 32, l + h, 3))),
    vo: maps.vo.map((row, l) => row.map((r, h) => (l === 1 && h === 1 ? summary(r, 32, 4, 4) : summary(r, 32, 0.1, 2)))),
  };
  return {
    method: 'activation',
    symmetry: 'orthogonal',
    seconds: 3.2,
    iterations: 1,
    objectiveBefore: 12.5,
    objectiveAfter: 40.25,
    perms: { 'mlp.0': Array.from({ length: 8 }, (_, i) => 7 - i), 'mlp.1': Array.from({ length: 8 }, (_, i) => i) },
    out: '/models/b-aligned',
    referenceFolded: '/models/b-aligned.a-folded',
    written: true,
    backend: 'cpu',
    family: 'gpt2',
    groups: [],
    equivalence: ok,
    orthogonal: { ...(pictures ? withPictures(summaries, maps) : summaries), untiedHead: true, referenceEquivalence: ok },
  };
}

async function openWith(result: AlignResult, theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark'): Promise<Page> {
  const page = await hx.open('alignment', theme);
  // As the extension posts it: Float32Arrays as {$f32: base64}.
  await postFromHost(page, `{ type: 'init', state: ${stringifyWithFloats(alignmentState('/models/a', '/models/b', result))} }`);
  await page.waitForSelector('section.orthogonal table');
  return page;
}

/** Per row of the picture's canvas: the columns drawn in the legend's 1 colour, and whether every other cell has its 0 colour. */
async function brightCells(page: Page): Promise<{ bright: number[][]; restIsZero: boolean }> {
  return page.evaluate(() => {
    // No named helper functions in here: the bundler's name-keeping would wrap them in a helper the page lacks.
    const bar = document.querySelector('.map-picture-view canvas.legend-bar') as HTMLCanvasElement;
    const legend = bar.getContext('2d')!.getImageData(0, 0, bar.width, bar.height).data;
    const zero = [legend[0], legend[1], legend[2]].join();
    const one = [legend[255 * 4], legend[255 * 4 + 1], legend[255 * 4 + 2]].join();
    const canvas = document.querySelector('canvas.map-picture') as HTMLCanvasElement;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const bright: number[][] = [];
    let restIsZero = true;
    for (let i = 0; i < canvas.height; i++) {
      bright.push([]);
      for (let j = 0; j < canvas.width; j++) {
        const p = (i * canvas.width + j) * 4;
        const c = [d[p], d[p + 1], d[p + 2]].join();
        if (c === one) bright[i].push(j);
        else if (c !== zero) restIsZero = false;
      }
    }
    return { bright, restIsZero };
  });
}

test('an orthogonal alignment shows each map, how far from a permutation, and opens A\'', async () => {
  const result = orthogonalResult();
  const o = result.orthogonal!;
  const page = await openWith(result);
  const rows = await page.$$eval('section.orthogonal tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
  // Residual stream, then per layer the QK and VO maps of each head.
  assert.deepEqual(rows.map((r) => r[0]), [
    'residual stream',
    'layer 0 · QK · head 0', 'layer 0 · QK · head 1', 'layer 0 · VO · head 0', 'layer 0 · VO · head 1',
    'layer 1 · QK · head 0', 'layer 1 · QK · head 1', 'layer 1 · VO · head 0', 'layer 1 · VO · head 1',
  ]);
  // Half the residual's rows are a permutation's (1), half spread over two directions (0.8).
  assert.equal(fmt(o.residual.rowMaxMean, 3), '0.9');
  assert.deepEqual(rows[0], ['residual stream', '512', '0.9', '12.5 → 40.25']);
  assert.deepEqual(rows[8], ['layer 1 · VO · head 1', '32', '1', '4 → 4']);
  // The bar is as long as the row max: a permutation (1) fills it, the residual (0.9) nearly.
  const bars = await page.$$eval('.row-max-bar', (els) => els.map((e) => (e as HTMLElement).getBoundingClientRect().width));
  assert.equal(bars[8], 60);
  assert.equal(bars[0], Math.round(60 * o.residual.rowMaxMean));
  const heads = [...o.qk.flat(), ...o.vo.flat()].map((m) => m.rowMaxMean);
  const summary = (await page.textContent('.orthogonal-summary')) ?? '';
  assert.equal(summary, `Residual stream (512 dims): row max 0.9; 8 per-head maps: row max ${fmt(Math.min(...heads), 3)} to 1. MLP units are permuted, as with permutations.`);
  const folded = (await page.textContent('section.orthogonal .folded')) ?? '';
  assert.match(folded, /A' .* was written: b-aligned\.a-folded\. Both carry an untied lm_head/);

  await clearPosted(page);
  await page.getByRole('button', { name: "Open A': /models/b-aligned.a-folded" }).click();
  await page.locator('section.orthogonal').getByRole('button', { name: 'Export CSV' }).click();
  const msgs = await posted(page);
  assert.deepEqual(msgs[0], { type: 'openFile', which: 'aFolded' });
  assert.equal(msgs[1]?.type, 'exportCsv');
  const table = parseCsv(String(msgs[1]?.csv));
  assert.deepEqual(table[0], ['map', 'size', 'row_max_mean', 'objective_before', 'objective_after']);
  assert.deepEqual(table[1], ['residual stream', '512', String(o.residual.rowMaxMean), '12.5', '40.25']);
  assert.equal(table.length, 10);

  // One picture (the map picked), no permutation heatmaps and no empty permutation-group sections under the maps.
  assert.equal(await page.locator('canvas.heatmap').count(), 1);
  assert.equal(await page.locator('section.groups, section.group-table').count(), 0);
  assert.match((await page.textContent('header .facts')) ?? '', /Methodactivation · orthogonal maps/);
  assert.deepEqual(await warnings(page), []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(SHOTS, 'alignment-orthogonal.png'), fullPage: true });
  await page.close();
});

test('the picture of |R|: the residual stream first, reduced by block max, axes and legend in the user\'s words; the map picked by selector, table or keyboard', async () => {
  const page = await openWith(orthogonalResult());
  const picture = page.locator('section.orthogonal .map-picture-view');
  // The residual stream first: 512 directions drawn as 256 × 256 cells of 2 × 2.
  assert.equal(await page.inputValue('select.map-select'), 'residual stream');
  const options = await page.$$eval('select.map-select option', (os) => os.map((x) => x.textContent));
  assert.deepEqual(options.slice(0, 3), ['residual stream', 'layer 0 · QK · head 0', 'layer 0 · QK · head 1']);
  assert.equal(options.length, 9);
  assert.deepEqual(await page.$eval('canvas.map-picture', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]), [256, 256]);
  assert.equal(await picture.locator('.axis-label.rows').textContent(), "Rows: B's residual direction (0–511)");
  assert.equal(await picture.locator('.axis-label.cols').textContent(), "Columns: A's residual direction (0–511)");
  assert.match((await picture.locator('.map-caption').textContent()) ?? '', /^residual stream: 512 × 512, 256 × 256 cells, each the largest \|R_ij\| of 2 × 2 \(block max\); row max \(mean\) 0\.9\.$/);
  assert.equal(await picture.locator('.map-explanation').textContent(), "A permutation shows one full-colour cell per row; rows spread over many faint cells mix B's directions: a rotation.");
  assert.deepEqual(await picture.locator('.legend span').allTextContents(), ['|R_ij|', '0', '1']);
  // Each row of cells holds one pair of B's directions: a permuted pair (two cells at 1, the
  // legend's 1 colour) or, every other one, a pair rotated by (0.6, 0.8) (block max 0.8: none at 1).
  const residual = await brightCells(page);
  const col = (k: number) => Math.floor(((k * 5 + 11) % D) / 2);
  assert.deepEqual(residual.bright, residual.bright.map((_, i) => (i % 2 === 0 ? [col(2 * i), col(2 * i + 1)].sort((a, b) => a - b) : [])));

  // The selector shows a head's map; a permutation's |R| is one 1 per row, exactly where it maps.
  await page.selectOption('select.map-select', 'layer 1 · VO · head 1');
  assert.equal(await page.getAttribute('canvas.map-picture', 'data-map'), 'layer 1 · VO · head 1');
  assert.equal(await picture.locator('.axis-label.rows').textContent(), "Rows: B's value dimension (0–31)");
  const perm = await brightCells(page);
  assert.deepEqual(perm.bright, HEAD_PERM.map((j) => [j]));
  assert.equal(perm.restIsZero, true);
  assert.match((await picture.locator('.map-caption').textContent()) ?? '', /32 × 32, one cell per entry; row max \(mean\) 1\./);
  // The keyboard reads cells: the first arrow puts the cursor on (0, 0), then it moves.
  await page.locator('canvas.map-picture').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await picture.locator('.map-readout').textContent(), `B's value dimension 0 · A's value dimension 0 · |R_ij| ${HEAD_PERM[0] === 0 ? 1 : 0}`);
  for (let k = 0; k < HEAD_PERM[0]; k++) await page.keyboard.press('ArrowRight');
  assert.equal(await picture.locator('.map-readout').textContent(), `B's value dimension 0 · A's value dimension ${HEAD_PERM[0]} · |R_ij| 1`);
  await page.keyboard.press('ArrowDown');
  assert.equal(await picture.locator('.map-readout').textContent(), `B's value dimension 1 · A's value dimension ${HEAD_PERM[0]} · |R_ij| 0`);

  // A map's name in the table shows its picture; the choice is kept with the panel's state.
  await page.locator('section.orthogonal tbody').getByRole('button', { name: 'layer 0 · QK · head 1' }).click();
  assert.equal(await page.inputValue('select.map-select'), 'layer 0 · QK · head 1');
  assert.deepEqual(await page.$$eval('section.orthogonal tbody button[aria-current="true"]', (bs) => bs.map((b) => b.textContent)), ['layer 0 · QK · head 1']);
  assert.equal(await picture.locator('.axis-label.cols').textContent(), "Columns: A's query/key dimension (0–31)");
  const rotation = await brightCells(page);
  assert.ok(rotation.bright.every((cols) => cols.length === 0), 'a random rotation has no cell at 1');
  const kept = await page.evaluate(() => (window as unknown as { __state: { ui: { orthogonal?: { map?: string } } } }).__state.ui.orthogonal?.map);
  assert.equal(kept, 'layer 0 · QK · head 1');
  await page.screenshot({ path: join(SHOTS, 'alignment-orthogonal-head.png'), fullPage: true });
  // The theme's colours: switching to a light theme redraws the picture from its background.
  const legendZero = () => page.$eval('.map-picture-view canvas.legend-bar', (c) => [...(c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 1, 1).data.slice(0, 3)]);
  const dark = await legendZero();
  await page.evaluate(() => (document.body.className = 'vscode-light'));
  await page.waitForFunction((before) => {
    const c = document.querySelector('.map-picture-view canvas.legend-bar') as HTMLCanvasElement;
    return c.getContext('2d')!.getImageData(0, 0, 1, 1).data.slice(0, 3).join() !== before;
  }, dark.join());
  assert.ok((await legendZero()).every((x) => x > 200), 'light theme: 0 is the light background');
  await page.selectOption('select.map-select', 'layer 1 · VO · head 1');
  await page.screenshot({ path: join(SHOTS, 'alignment-orthogonal-light.png'), fullPage: true });
  assert.deepEqual(await warnings(page), []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('an orthogonal run recorded without pictures says so and draws none', async () => {
  const page = await openWith(orthogonalResult(false));
  assert.equal(await page.locator('canvas.map-picture').count(), 0);
  assert.equal(await page.locator('section.orthogonal tbody button').count(), 0);
  assert.match((await page.textContent('section.orthogonal')) ?? '', /This run kept no pictures of its maps .*align again to see them\./);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('a permutation alignment has no orthogonal section', async () => {
  const { orthogonal: _o, symmetry: _s, referenceFolded: _r, ...plain } = orthogonalResult();
  const page = await hx.open('alignment', 'vscode-dark');
  await postFromHost(page, `{ type: 'init', state: ${stringifyWithFloats(alignmentState('/models/a', '/models/b', plain))} }`);
  await page.waitForSelector('main.alignment');
  assert.equal(await page.locator('section.orthogonal').count(), 0);
  assert.equal(await page.locator('section.groups').count(), 1);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});
