// A language model in a real VS Code (code-server + chromium), clicked as a person does: a
// workspace with two tiny GPT-2 Hugging Face folders and a text file as `rebasin.evaluationData`
// (tokenized with the tokenizer.json beside each model, the shared fixture's). A: a GPT-2 (2 layers,
// 4 heads) trained here on that text; B: A under a known permutation of its residual stream, MLPs,
// heads and the dimensions inside them, so the naive path crosses a real barrier and the aligned
// one must be flat.
// 1. Right-click B's model.safetensors → Align with… → A → Weight matching → Permutations: the panel opens; its
//    "Attention heads" tab shows each layer's head heatmap and the inner permutations; the loss
//    curve says its perplexity; aligning undid the permutation (aligned barrier 0, equal ends).
// 2. Palette → Compute barrier… → B → A: the barrier panel shows the same LM curve.
// Screenshots land in test-results/journey-lm-*.png.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { explorerRow, findFrame, menuItem, runCommand, screenshot, startWorkbenchRetrying, type Workbench } from '../harness/workbench';
import { loadTokenizer, tokenizeTextFile } from '../../src/core/data/textTokenize';
import { initBackend } from '../../src/engine/backend';
import { hfFixture } from '../unit/helpers/hfFixtures';
import { trainTinyGpt2, writeGpt2Folder, type TinyGpt2 } from '../unit/helpers/trainGpt2';
import { writePermutedHf } from './checkpoints';

/** A short English text (written for this test): twice over, 41 windows of 32 tokens with the fixture's tokenizer. */
const TEXT = [
  'The river runs past the old mill and under the stone bridge before it reaches the sea.',
  'In the morning the baker opens the shop, and the smell of bread fills the narrow street.',
  'Children walk to school in pairs, talking about the games they will play after lunch.',
  'A small boat waits at the harbour while the fishermen mend their nets in the sun.',
  'The library keeps its doors open late on Thursdays, when the reading group meets.',
  'Rain came in from the west and the market stalls were covered with green canvas.',
  'She planted tomatoes, beans and a row of sunflowers along the garden fence.',
  'The train to the city leaves every hour, and the last one departs just before midnight.',
  'He wrote letters to his sister every week, describing the weather and the neighbours.',
  'At the end of the summer the fields turn gold and the farmers bring in the harvest.',
  'The museum shows maps of the coast drawn by sailors more than two hundred years ago.',
  'Snow fell quietly overnight, and by dawn the whole valley was white and still.',
].join('\n');

/** Small enough to train in 5 to 20 s here (100 Adam steps on wasm, idle or loaded), big enough to have heads to permute. */
const MODEL: TinyGpt2 = { layers: 2, d: 32, heads: 4, vocab: 320, positions: 32 };
const SEQ_LEN = 32;

const FOLDER_A = 'gpt2-a';
const FOLDER_B = 'gpt2-b';

let wb: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'rebasin-lm-'));
  const tokenizer = join(hfFixture('gpt2-tiny'), 'tokenizer.json');
  const text = join(workspace, 'eval.txt');
  writeFileSync(text, `${TEXT}\n${TEXT}\n`);
  // A: trained on the text (next-token loss about 1.2 after 100 steps; random weights would give
  // a flat curve at perplexity ≈ 320 on both paths).
  const t0 = Date.now();
  await initBackend('wasm');
  const windows = await tokenizeTextFile(text, await loadTokenizer(tokenizer), SEQ_LEN);
  const trained = await trainTinyGpt2(MODEL, windows, { seed: 1, steps: 100, batch: 8, lr: 1e-2 });
  await writeGpt2Folder(join(workspace, FOLDER_A), MODEL, trained.weights);
  copyFileSync(tokenizer, join(workspace, FOLDER_A, 'tokenizer.json'));
  await writePermutedHf(join(workspace, FOLDER_A), join(workspace, FOLDER_B), 17);
  console.log(`[journey-lm] A trained to loss ${trained.loss.toFixed(3)} on ${windows.n} windows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  mkdirSync(join(workspace, '.vscode'));
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({
    'rebasin.evaluationData': 'eval.txt',
    'rebasin.sequenceLength': SEQ_LEN,
    'rebasin.lambdaSteps': 5,
    'rebasin.workers': 1,
  }));
  wb = await startWorkbenchRetrying({ workspace, extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH }, 'journey-lm');
});

after(async () => {
  await wb?.close();
  rmSync(workspace, { recursive: true, force: true });
});

/** The quick-pick row of `model.safetensors` in `folder` (not B's aligned output beside it). */
async function pickModel(page: Page, folder: string, ms = 45_000): Promise<void> {
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: 'model.safetensors' }).filter({ hasText: folder }).first();
  await row.click({ timeout: ms });
}

/** Opaque pixels of the panel's chart canvas (0: chart.js drew nothing). */
async function chartPixels(frame: Frame): Promise<number> {
  return frame.locator('canvas.chart').first().evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const ctx = c.getContext('2d');
    if (!ctx || c.width === 0 || c.height === 0) return 0;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
}

/** The numbers of "Barrier: naive X, aligned Y". */
async function barriers(frame: Frame): Promise<{ naive: number; aligned: number; text: string }> {
  const text = (await frame.locator('p.barrier').textContent()) ?? '';
  const m = /naive (-?[\d.e+-]+), aligned (-?[\d.e+-]+)/.exec(text);
  assert.ok(m, `barrier text: ${text}`);
  return { naive: Number(m[1]), aligned: Number(m[2]), text };
}

/** "Perplexity: A x, B y; …": the two endpoint perplexities. */
async function endpointPerplexities(frame: Frame): Promise<{ a: number; b: number; text: string }> {
  const text = (await frame.locator('p.perplexity').textContent()) ?? '';
  const m = /Perplexity: A ([\d.e+]+), B ([\d.e+]+);/.exec(text);
  assert.ok(m, `perplexity text: ${text}`);
  return { a: Number(m[1]), b: Number(m[2]), text };
}

test('Align with… on a GPT-2 folder: head heatmaps per layer, an LM curve with perplexity, the permutation undone', async () => {
  assert.ok(wb);
  const { page } = wb;
  const started = Date.now();
  try {
    await explorerRow(page, FOLDER_B).click();
    // The first command after start-up can arrive before the extension host is ready: click again, as a person would.
    for (let attempt = 1; ; attempt++) {
      await menuItem(page, 'model.safetensors', 'Align with…');
      try {
        await pickModel(page, FOLDER_A);
        break;
      } catch (e) {
        await screenshot(page, `journey-lm-pick-attempt-${attempt}`);
        if (attempt === 2) throw e;
        await page.keyboard.press('Escape');
      }
    }
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Weight matching' }).first().click({ timeout: 30_000 });
    // Both are GPT-2 folders: the symmetry is asked next (weight matching searches both).
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Permutations' }).first().click({ timeout: 30_000 });

    // The finished curve (not "Barrier so far") with its perplexity line.
    const frame = await findFrame(page, 'p.perplexity', 120_000);
    await frame.locator('p.barrier', { hasText: /^Barrier: / }).waitFor({ state: 'visible', timeout: 120_000 });
    const curveSeconds = (Date.now() - started) / 1000;
    const b = await barriers(frame);
    const ppl = await endpointPerplexities(frame);
    // Both ends are the same function (B is a permutation of A); the naive path crosses a barrier;
    // aligning undoes the permutation, so the aligned path is flat.
    assert.ok(ppl.a < 10, `A was trained: ${ppl.text}`);
    assert.ok(Math.abs(ppl.a - ppl.b) / ppl.a < 1e-3, `A and B compute the same function: ${ppl.text}`);
    assert.ok(b.naive > 0.5, `the naive path crosses a barrier: ${b.text}`);
    assert.ok(Math.abs(b.aligned) < 1e-3, `aligned barrier of a permuted copy: ${b.text}`);
    const chart = frame.locator('canvas.chart').first();
    await chart.scrollIntoViewIfNeeded();
    await page.waitForTimeout(800);
    const drawn = await chartPixels(frame);
    assert.ok(drawn > 1000, `the loss/perplexity chart is drawn (${drawn} opaque pixels)`);
    await screenshot(page, 'journey-lm-curve');

    // The heads, one layer at a time.
    await frame.locator('button.tab', { hasText: 'Attention heads' }).click();
    assert.equal(await frame.locator('.layer-summary').textContent(), 'layer 0 attention: 4 heads × 8 dims; q/k dims permute jointly within each head; v/o dims permute within each head');
    const heads = frame.locator('section[data-group="P_transformer.h.0.heads"] canvas.heatmap');
    assert.equal(await heads.evaluate((c) => `${(c as HTMLCanvasElement).width}x${(c as HTMLCanvasElement).height}`), '4x4');
    assert.equal(await frame.locator('canvas.multiple').count(), 8, 'q/k and v/o: one picture per head each');
    await frame.locator('section[data-group="P_transformer.h.0.heads"]').scrollIntoViewIfNeeded();
    await page.waitForTimeout(500);
    await screenshot(page, 'journey-lm-heads-layer0');
    await frame.locator('select.layer-select').selectOption('1');
    await frame.locator('section[data-group="P_transformer.h.1.heads"] canvas.heatmap').waitFor({ state: 'visible', timeout: 10_000 });
    await frame.locator('section[data-group="P_transformer.h.1.vo"] button.seg[data-view="after"]').click();
    await page.waitForTimeout(500);
    await screenshot(page, 'journey-lm-heads-layer1-after');
    console.log(`[journey-lm] align + curve shown ${curveSeconds.toFixed(1)} s after the pick; ${b.text.trim()}; ${ppl.text.trim()}`);
  } catch (e) {
    await screenshot(page, 'journey-lm-align-failed').catch(() => undefined);
    throw e;
  }
});

test('palette → Compute barrier… on the two GPT-2 folders: the LM barrier with perplexity', async () => {
  assert.ok(wb);
  const { page } = wb;
  const started = Date.now();
  try {
    await page.keyboard.press('Escape');
    await runCommand(page, 'Re-Basin: Compute barrier…');
    await pickModel(page, FOLDER_B);
    await pickModel(page, FOLDER_A);
    const frame = await findFrame(page, 'h1:has-text("Re-Basin barrier")', 120_000);
    await frame.locator('p.perplexity').waitFor({ state: 'visible', timeout: 60_000 });
    const b = await barriers(frame);
    const ppl = await endpointPerplexities(frame);
    assert.ok(b.naive > 0.5, `the naive path crosses a barrier: ${b.text}`);
    assert.ok(Math.abs(b.aligned) < 1e-3, `aligned barrier of a permuted copy: ${b.text}`);
    assert.ok(Math.abs(ppl.a - ppl.b) / ppl.a < 1e-3, ppl.text);
    await frame.locator('canvas.chart').first().scrollIntoViewIfNeeded();
    await page.waitForTimeout(800);
    assert.ok((await chartPixels(frame)) > 1000, 'the barrier chart is drawn');
    await screenshot(page, 'journey-lm-barrier');
    console.log(`[journey-lm] barrier shown ${((Date.now() - started) / 1000).toFixed(1)} s after the command; ${b.text.trim()}; ${ppl.text.trim()}`);
  } catch (e) {
    await screenshot(page, 'journey-lm-barrier-failed').catch(() => undefined);
    throw e;
  }
});
