/**
 * Attention heads in the webviews, with states the extension really builds: the alignment panel
 * from `alignHandler` (weight matching with heatmaps) on the shared tiny GPT-2 and Llama (GQA)
 * against a known permutation of themselves, the inspector from `architectureOf` on their headers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { stackExperts } from '../../src/core/moe/expertStack';
import { checkpointSummary, openCheckpoint } from '../../src/core/safetensors';
import { initBackend } from '../../src/engine/backend';
import type { HandlerContext } from '../../src/engine/handlerContext';
import { alignHandler } from '../../src/engine/handlers/align';
import { architectureOf } from '../../src/extension/inspectorArchitecture';
import { alignmentState, barrierState } from '../../src/extension/panelState';
import type { AlignmentState, InspectorState } from '../../webview/protocol';
import { typedArrayReplacer } from '../../shared/float32Json';
import { hfFixture } from '../unit/helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../unit/helpers/tmp';
import { writePermutedHf } from '../ui/checkpoints';
import { canvasStats, cspViolations, pageErrors, postFromHost, SHOTS, startHarness, warnings, type Harness } from './harness';

let hx: Harness;
let tmp: TmpDir;
const states = new Map<string, AlignmentState>();

/** Aligns a known permutation of fixture `name` to the fixture, as the extension's Align with… does. */
async function alignedState(name: string, seed: number): Promise<AlignmentState> {
  const a = join(hfFixture(name), 'model.safetensors');
  const dirB = tmp.file(`${name}-b`);
  await writePermutedHf(hfFixture(name), dirB, seed);
  const b = join(dirB, 'model.safetensors');
  const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
  const result = await alignHandler({ kind: 'align', a, b, method: 'weight', seed: 0, maxIter: 100, includeMatrices: true }, ctx);
  return alignmentState(a, b, result);
}

before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-heads-browser-');
  states.set('gpt2', await alignedState('gpt2-tiny', 3));
  states.set('llama', await alignedState('llama-tiny-gqa', 4));
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
  tmp?.remove();
});

async function openPanel(which: string, theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark'): Promise<{ page: Page; state: AlignmentState }> {
  const state = states.get(which)!;
  const page = await hx.open('alignment', theme, { height: 1400 });
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(state, typedArrayReplacer)} }`);
  await page.waitForSelector('button.tab');
  return { page, state };
}

/** Luminance of pixel (x, y) of the n-th canvas matching `selector`. */
async function luminance(page: Page, selector: string, index: number, x: number, y: number): Promise<number> {
  return page.evaluate(([sel, i, px, py]) => {
    const cv = document.querySelectorAll(sel as string)[i as number] as HTMLCanvasElement;
    const d = cv.getContext('2d')!.getImageData(px as number, py as number, 1, 1).data;
    return (0.2126 * d[0] + 0.7152 * d[1] + 0.0722 * d[2]) / 255;
  }, [selector, index, x, y] as const);
}

test('GPT-2: head groups sit under one "Attention heads" tab, one layer at a time', async () => {
  const { page, state } = await openPanel('gpt2');
  const tabs = await page.locator('button.tab').allTextContents();
  assert.deepEqual(tabs, ['P_residual', 'P_transformer.h.0.mlp', 'P_transformer.h.1.mlp', 'Attention heads']);
  await page.click('button.tab:has-text("Attention heads")');
  assert.deepEqual(await page.locator('select.layer-select option').allTextContents(), ['layer 0 (transformer.h.0)', 'layer 1 (transformer.h.1)']);
  assert.equal(await page.textContent('.layer-summary'), 'layer 0 attention: 4 heads × 16 dims; q/k dims permute jointly within each head; v/o dims permute within each head');

  // The head heatmap: n_heads × n_heads, permutation view, cell (g, perm[g]) lit.
  const heads = state.heatmaps.find((m) => m.name === 'P_transformer.h.0.heads')!;
  const hm = page.locator('section[data-group="P_transformer.h.0.heads"] canvas.heatmap');
  assert.equal(await hm.evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`), '4x4');
  for (let g = 0; g < 4; g++) {
    const lit = await luminance(page, 'canvas.heatmap', 0, heads.perm[g], g);
    const off = await luminance(page, 'canvas.heatmap', 0, (heads.perm[g] + 1) % 4, g);
    assert.ok(lit > off + 0.2, `head ${g}: lit ${lit} vs ${off}`);
  }
  // The known permutation moved the heads: the recovered one is not the identity.
  assert.ok(heads.perm.some((p, i) => p !== i), `heads permutation ${heads.perm.join(',')}`);

  // Inner permutations arrive as their diagonal blocks only (4 heads × 16², not 64²).
  for (const inner of ['qk', 'vo']) {
    const m = state.heatmaps.find((x) => x.name === `P_transformer.h.0.${inner}`)!;
    assert.equal(m.blocks, 4, `${m.name} sent as blocks`);
    assert.equal(m.size, 64);
    assert.equal(m.before.length, 4 * 16 * 16);
    assert.equal(m.after.length, 4 * 16 * 16);
  }
  // Inner permutations: one head_dim × head_dim picture per head, captioned with its matched B head.
  for (const inner of ['qk', 'vo']) {
    const name = `P_transformer.h.0.${inner}`;
    const cells = page.locator(`section[data-group="${name}"] canvas.multiple`);
    assert.equal(await cells.count(), 4);
    const perm = state.heatmaps.find((m) => m.name === name)!.perm;
    for (let g = 0; g < 4; g++) {
      const caption = await page.locator(`section[data-group="${name}"] figure[data-block="${g}"] figcaption`).textContent();
      assert.ok(caption?.startsWith(`A head ${g} ↔ B head ${heads.perm[g]}`), caption ?? '');
      const i = 5;
      const j = perm[g * 16 + i] - g * 16;
      const sel = `section[data-group="${name}"] canvas.multiple`;
      assert.ok((await luminance(page, sel, g, j, i)) > (await luminance(page, sel, g, (j + 1) % 16, i)) + 0.2, `${name} head ${g}`);
    }
  }
  await page.screenshot({ path: join(SHOTS, 'heads-gpt2-perm.png'), fullPage: true });

  // Similarity after alignment: each matched pair's dims on the diagonal.
  await page.click('section[data-group="P_transformer.h.0.vo"] button.seg[data-view="after"]');
  const sel = 'section[data-group="P_transformer.h.0.vo"] canvas.multiple';
  let diag = 0;
  let offDiag = 0;
  for (let i = 0; i < 16; i++) {
    diag += await luminance(page, sel, 0, i, i);
    offDiag += await luminance(page, sel, 0, (i + 7) % 16, i);
  }
  assert.ok(diag / 16 > offDiag / 16 + 0.2, `diagonal ${diag / 16} vs off ${offDiag / 16}`);
  await page.screenshot({ path: join(SHOTS, 'heads-gpt2-after.png'), fullPage: true });

  // Similarity before: the same matched heads (captions unchanged), their dims not yet permuted, so
  // each row's bright cell sits where the permutation sends it.
  await page.click('section[data-group="P_transformer.h.0.vo"] button.seg[data-view="before"]');
  const vo = state.heatmaps.find((m) => m.name === 'P_transformer.h.0.vo')!.perm;
  for (const g of [0, 3]) {
    const caption = await page.locator(`section[data-group="P_transformer.h.0.vo"] figure[data-block="${g}"] figcaption`).textContent();
    assert.ok(caption?.startsWith(`A head ${g} ↔ B head ${heads.perm[g]}`), caption ?? '');
  }
  let moved = 0;
  let elsewhere = 0;
  for (let i = 0; i < 16; i++) {
    const j = vo[i];
    moved += await luminance(page, sel, 0, j, i);
    elsewhere += await luminance(page, sel, 0, (j + 7) % 16, i);
  }
  assert.ok(moved / 16 > elsewhere / 16 + 0.2, `permuted diagonal ${moved / 16} vs off ${elsewhere / 16}`);
  assert.ok(vo.slice(0, 16).some((p, i) => p !== i), 'the v/o dims of head 0 moved');
  assert.match((await page.textContent('section[data-group="P_transformer.h.0.vo"] p.hint:last-child')) ?? '', /before: the same matched heads, dims unpermuted/);
  await page.screenshot({ path: join(SHOTS, 'heads-gpt2-before.png'), fullPage: true });

  // The layer selector: layer 1's groups replace layer 0's.
  await page.selectOption('select.layer-select', '1');
  assert.match((await page.textContent('.layer-summary')) ?? '', /^layer 1 attention/);
  assert.equal(await page.locator('section[data-group="P_transformer.h.1.heads"] canvas.heatmap').count(), 1);
  assert.equal(await page.locator('section[data-group="P_transformer.h.0.heads"]').count(), 0);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('Llama with GQA: KV groups, query heads per group, v/o per KV group, q/k fixed', async () => {
  const { page, state } = await openPanel('llama', 'vscode-light');
  await page.click('button.tab:has-text("Attention heads")');
  assert.equal(await page.textContent('.layer-summary'), 'layer 0 attention: 2 KV groups × 2 query heads × 16 dims; query heads permute within each KV group; v/o dims permute within each KV group; q/k dims fixed (RoPE)');
  const kv = page.locator('section[data-group="P_model.layers.0.kv_heads"] canvas.heatmap');
  assert.equal(await kv.evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`), '2x2');
  const q = page.locator('section[data-group="P_model.layers.0.heads"] canvas.heatmap');
  assert.equal(await q.evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`), '4x4');
  assert.equal(await page.locator('section[data-group="P_model.layers.0.vo"] canvas.multiple').count(), 2);
  const kvPerm = state.heatmaps.find((m) => m.name === 'P_model.layers.0.kv_heads')!.perm;
  const caption = await page.locator('section[data-group="P_model.layers.0.vo"] figure[data-block="1"] figcaption').textContent();
  assert.ok(caption?.startsWith(`A KV group 1 ↔ B KV group ${kvPerm[1]}`), caption ?? '');
  assert.equal(await page.locator('section[data-group$=".qk"]').count(), 0);
  // Query heads within each KV group arrive as blocks (2 groups × 2²) and are drawn whole: 4 × 4 above.
  assert.equal(state.heatmaps.find((m) => m.name === 'P_model.layers.0.heads')!.blocks, 2);
  await page.screenshot({ path: join(SHOTS, 'heads-llama-gqa.png'), fullPage: true });
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('a barrier run lists head groups as tabs and says why it has no heatmaps', async () => {
  const aligned = states.get('gpt2')!;
  const curve = { lambdas: [0, 1], naive: { loss: [2, 2], acc: [0.3, 0.3] }, barrier: { naive: 0 } };
  const align = { method: 'weight' as const, seconds: 1, iterations: 2, objectiveBefore: aligned.objectiveBefore, objectiveAfter: aligned.objectiveAfter, perms: {}, backend: 'wasm' as const, groups: aligned.groups.map((g) => ({ ...g })) };
  const state = barrierState('a.safetensors', 'b.safetensors', { ...curve, backend: 'wasm', seconds: 1, workers: 1, align });
  const page = await hx.open('alignment');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(state, typedArrayReplacer)} }`);
  await page.waitForSelector('button.tab');
  await page.click('button.tab:has-text("P_transformer.h.0.vo")');
  const empty = (await page.textContent('.tabpanel p.empty')) ?? '';
  assert.match(empty, /barrier run keeps no similarity matrices/);
  assert.doesNotMatch(empty, /recorded before heatmaps were stored/);
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

async function inspectorStateOf(name: string): Promise<InspectorState> {
  const file = join(hfFixture(name), 'model.safetensors');
  const ckpt = await openCheckpoint(file);
  try {
    const s = checkpointSummary(ckpt);
    // As the extension's inspector reads it: a mixture's experts on their stacked view.
    return { path: s.path, format: s.format, metadata: s.metadata, tensors: s.tensors, totalParams: s.totalParams, totalBytes: s.totalBytes, architecture: architectureOf(stackExperts(ckpt).tensors, readHfConfig(s.path)) };
  } finally {
    await ckpt.close();
  }
}

test('the inspector lists each attention layer: heads × head_dim, KV groups, what permutes inside', async () => {
  for (const [name, first] of [
    ['gpt2-tiny', ['layer 0', '4 heads × 16 dims', 'q/k dims permute jointly within each head; v/o dims permute within each head']],
    ['llama-tiny-gqa', ['layer 0', '2 KV groups × 2 query heads × 16 dims', 'query heads permute within each KV group; v/o dims permute within each KV group; q/k dims fixed (RoPE)']],
    ['bert-tiny', ['layer 0', '4 heads × 16 dims', 'q/k dims permute jointly within each head; v/o dims permute within each head']],
  ] as const) {
    const page = await hx.open('inspector');
    await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(await inspectorStateOf(name))} }`);
    await page.waitForSelector('table.heads-table');
    const rows = page.locator('table.heads-table tbody tr');
    assert.equal(await rows.count(), 2, name);
    const cells = (await rows.nth(0).locator('th, td').allTextContents()).slice(0, 3);
    assert.deepEqual(cells, [...first], name);
    // A per-head permutation counts (head_dim)! once per head, not (heads·head_dim)!.
    if (name === 'gpt2-tiny') {
      const qk = await page.locator('table.perm-table:not(.heads-table) tr', { hasText: 'P_transformer.h.0.qk' }).locator('td').allTextContents();
      assert.equal(qk[0], '4 × 16');
      assert.ok(Math.abs(Number(qk[1]) - 4 * 13.3206) < 0.01, `log10 of (16!)^4: ${qk[1]}`);
    }
    await page.locator('section[aria-labelledby="arch-h"]').screenshot({ path: join(SHOTS, `inspector-heads-${name}.png`) });
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  }
});

test('the inspector lists each mixture-of-experts layer: experts × units, the router\'s top-k, what permutes', async () => {
  const page = await hx.open('inspector');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(await inspectorStateOf('mixtral-tiny'))} }`);
  await page.waitForSelector('table.experts-table');
  const rows = page.locator('table.experts-table tbody tr');
  assert.equal(await rows.count(), 2);
  assert.deepEqual(await rows.nth(1).locator('th, td').allTextContents(), ['layer 1', '4 experts × 96 units', '2', 'experts permute as units, the units inside each expert', 'P_model.layers.1.experts, P_model.layers.1.expert_mlp']);
  assert.equal(await rows.nth(0).getAttribute('title'), 'layer 0 MLP: 4 experts × 96 units, router top 2; experts permute as units, the units inside each expert');
  // The heads beside them (GQA) are not mistaken for experts, nor the experts for heads.
  assert.deepEqual((await page.locator('table.heads-table tbody tr').nth(0).locator('th, td').allTextContents()).slice(0, 2), ['layer 0', '2 KV groups × 2 query heads × 16 dims']);
  assert.equal(await page.locator('table.heads-table tbody tr').count(), 2);
  await page.locator('section[aria-labelledby="arch-h"]').screenshot({ path: join(SHOTS, 'inspector-experts-mixtral-tiny.png') });
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('an LM curve shows perplexity beside the loss: endpoints and the highest point of each path', async () => {
  const base = states.get('gpt2')!;
  const loss = { naive: [2, 3, 2.2], aligned: [2, 2.1, 2.2] };
  const path = (l: number[]) => ({ loss: l, acc: [0.3, 0.2, 0.3], perplexity: l.map(Math.exp) });
  const state: AlignmentState = { ...base, curve: { lambdas: [0, 0.5, 1], naive: path(loss.naive), aligned: path(loss.aligned), barrier: { naive: 0.9, aligned: 0 } } };
  const page = await hx.open('alignment');
  await postFromHost(page, `{ type: 'init', state: ${JSON.stringify(state, typedArrayReplacer)} }`);
  await page.waitForSelector('p.perplexity');
  assert.equal(await page.textContent('p.perplexity'), `Perplexity: A 7.389, B 9.025; highest along the path: naive 20.09, aligned 9.025`);
  // The perplexity axis is logarithmic: chart.js draws nothing (and the view logs a warning) unless that scale is registered.
  await page.waitForTimeout(1_000);
  const chart = await canvasStats(page, 'canvas.chart');
  assert.ok(chart.opaque > 1000 && chart.colors > 10, `chart drawn: ${JSON.stringify(chart)}`);
  assert.deepEqual(await warnings(page), []);
  await page.locator('section.curve').screenshot({ path: join(SHOTS, 'heads-lm-curve.png') });
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});
