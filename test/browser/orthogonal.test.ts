/**
 * The alignment panel of an orthogonal alignment (`--symmetry orthogonal`): the state built by the
 * extension (panelState.alignmentState) from an align result's `orthogonal` maps, rendered from an
 * `init` message: one table row per map with how far it is from a permutation, A' with its button.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { clearPosted, cspViolations, pageErrors, parseCsv, postFromHost, posted, SHOTS, startHarness, warnings, type Harness } from './harness';
import { alignmentState } from '../../src/extension/panelState';
import type { AlignResult } from '../../src/engine/protocol';

let hx: Harness;
before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

const map = (size: number, rowMaxMean: number, before: number, after: number) => ({ size, rowMaxMean, objectiveBefore: before, objectiveAfter: after });
const ok = { maxAbsDiff: 1e-6, relDiff: 1e-7, ok: true, batch: 'data' as const };

/** What align --symmetry orthogonal returns for a 2-layer GPT-2 with 2 heads (d = 64, head dim 32). */
function orthogonalResult(): AlignResult {
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
    orthogonal: {
      residual: map(64, 0.31, 12.5, 40.25),
      qk: [[map(32, 0.42, 1, 3), map(32, 0.97, 2, 2.5)], [map(32, 0.55, 0.5, 4), map(32, 0.6, 1.5, 3)]],
      vo: [[map(32, 0.25, 0.1, 2), map(32, 0.33, 0.2, 2.2)], [map(32, 0.29, 0.3, 1.9), map(32, 1, 4, 4)]],
      untiedHead: true,
      referenceEquivalence: ok,
    },
  };
}

test('an orthogonal alignment shows each map, how far from a permutation, and opens A\'', async () => {
  const state = alignmentState('/models/a', '/models/b', orthogonalResult());
  const page = await hx.open('alignment', 'vscode-dark');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(state)} }`);
  await page.waitForSelector('section.orthogonal table');
  const rows = await page.$$eval('section.orthogonal tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
  // Residual stream, then per layer the QK and VO maps of each head.
  assert.deepEqual(rows.map((r) => r[0]), [
    'residual stream',
    'layer 0 · QK · head 0', 'layer 0 · QK · head 1', 'layer 0 · VO · head 0', 'layer 0 · VO · head 1',
    'layer 1 · QK · head 0', 'layer 1 · QK · head 1', 'layer 1 · VO · head 0', 'layer 1 · VO · head 1',
  ]);
  assert.deepEqual(rows[0], ['residual stream', '64', '0.31', '12.5 → 40.25']);
  assert.deepEqual(rows[8], ['layer 1 · VO · head 1', '32', '1', '4 → 4']);
  // The bar is as long as the row max: a permutation (1) fills it, the residual (0.31) about a third.
  const bars = await page.$$eval('.row-max-bar', (els) => els.map((e) => (e as HTMLElement).getBoundingClientRect().width));
  assert.equal(bars[8], 60);
  assert.equal(bars[0], Math.round(60 * 0.31));
  const summary = (await page.textContent('.orthogonal-summary')) ?? '';
  assert.match(summary, /Residual stream \(64 dims\): row max 0\.31; 8 per-head maps: row max 0\.25 to 1\./);
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
  assert.deepEqual(table[1], ['residual stream', '64', '0.31', '12.5', '40.25']);
  assert.equal(table.length, 10);

  // No heatmaps (the maps are not sent) and no empty permutation-group sections under the maps.
  assert.equal(await page.locator('canvas.heatmap').count(), 0);
  assert.equal(await page.locator('section.groups, section.group-table').count(), 0);
  assert.match((await page.textContent('header .facts')) ?? '', /Methodactivation · orthogonal maps/);
  assert.deepEqual(await warnings(page), []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(SHOTS, 'alignment-orthogonal.png'), fullPage: true });
  await page.close();
});

test('a permutation alignment has no orthogonal section', async () => {
  const { orthogonal: _o, symmetry: _s, referenceFolded: _r, ...plain } = orthogonalResult();
  const page = await hx.open('alignment', 'vscode-dark');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(alignmentState('/models/a', '/models/b', plain))} }`);
  await page.waitForSelector('main.alignment');
  assert.equal(await page.locator('section.orthogonal').count(), 0);
  assert.equal(await page.locator('section.groups').count(), 1);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});
