/**
 * The alignment panel explains itself (issue 19 items 4, 9, 10, 11): which data a curve is over,
 * what barrier/objective/gain mean, labelled axes, a keyboard-readable chart whose tooltip gives
 * accuracy in %, a cancelled curve kept and marked, and a PNG export on a solid background with
 * a title and a file name that tells A from B.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { clearPosted, field, pageErrors, postFromHost, posted, SHOTS, startHarness, type Harness } from './harness';

let hx: Harness;

before(async () => {
  hx = await startHarness();
});
after(async () => {
  await hx?.close();
});

const DATA = `{ name: 'mnist', split: 'test', examples: 10000 }`;

async function openCurve(theme: 'vscode-dark' | 'vscode-light' = 'vscode-dark', extra = ''): Promise<Page> {
  const page = await hx.open('alignment', theme);
  await postFromHost(page, `(() => { const s = fixtures.alignmentState({}); s.data = ${DATA}; ${extra}; return { type: 'init', state: s }; })()`);
  await page.waitForSelector('canvas.chart');
  return page;
}

test('the data the curve is over is said under the chart; every line style and axis is named', async () => {
  const page = await openCurve();
  assert.equal((await page.textContent('p.provenance'))?.trim(), 'Data: mnist (test split, 10,000 examples).');
  const key = (await page.textContent('p.chart-key')) ?? '';
  assert.match(key, /Solid lines: loss \(left axis\)/);
  assert.match(key, /dashed: accuracy in % \(right axis\)/);
  // A language model's curve: sequences, tokens and positions; the perplexity axis says it is a log scale.
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({});
    s.curve.naive.perplexity = s.curve.naive.loss.map(Math.exp);
    s.curve.aligned.perplexity = s.curve.aligned.loss.map(Math.exp);
    s.data = { name: 'tokens.npy', sequences: 64, seqLen: 128, positions: 8128 };
    return { type: 'init', state: s };
  })()`);
  await page.waitForFunction(() => document.querySelector('p.provenance')?.textContent?.includes('tokens.npy'));
  assert.equal((await page.textContent('p.provenance'))?.trim(), 'Data: tokens.npy (64 sequences of 128 tokens, 8,128 positions scored).');
  assert.match((await page.textContent('p.chart-key')) ?? '', /dotted: perplexity = exp\(loss\), on a log scale \(right axis\)/);
  await page.locator('section.curve').screenshot({ path: join(SHOTS, 'explain-lm-curve.png') });
  // Without a curve: the distance plot says it needs no data.
  await postFromHost(page, `{ type: 'init', state: fixtures.alignmentState({ distance: true }) }`);
  await page.waitForFunction(() => /weights alone/.test(document.querySelector('p.provenance')?.textContent ?? ''));
  assert.deepEqual(pageErrors(page), []);
  await page.close();
});

test('barrier, objective and gain carry a one-line definition (hover) and "What do these numbers mean?" lists them', async () => {
  const page = await openCurve();
  const barrierTitle = await page.getAttribute('p.barrier .defined', 'title');
  assert.match(barrierTitle ?? '', /^Loss barrier: the largest rise of the loss along the straight path/);
  const titles = await page.$$eval('header .facts dt.defined', (els) => els.map((e) => `${e.textContent}|${e.getAttribute('title')}`));
  assert.equal(titles.length, 2);
  assert.match(titles[0], /^Objective\|Matching objective: Σ over the matched weight tensors of ⟨A, π\(B\)⟩/);
  assert.match(titles[1], /^Gain\|Gain: objective after − objective before/);
  await page.click('details.definitions-box summary');
  const terms = await page.$$eval('details.definitions-box dt', (els) => els.map((e) => e.textContent));
  assert.deepEqual(terms, ['Barrier', 'Objective', 'Gain']);
  assert.ok(await page.isVisible('details.definitions-box dd'));
  await page.locator('header').screenshot({ path: join(SHOTS, 'explain-definitions.png') });
  await page.close();
});

test('the chart takes keyboard focus; arrows read the points, accuracy in percent like its axis', async () => {
  const page = await openCurve();
  await page.focus('canvas.chart');
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'CANVAS');
  await page.keyboard.press('ArrowRight');
  const first = (await page.textContent('.chart-point')) ?? '';
  assert.match(first, /^λ 0: Naive loss \(barrier 1\.2\) 0\.1; Aligned loss \(barrier 0\.08\) 0\.1; Naive accuracy 97%; Aligned accuracy 97%$/);
  await page.keyboard.press('End');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  const mid = (await page.textContent('.chart-point')) ?? '';
  // λ = 0.6: naive accuracy 0.97 − 0.6·4·0.6·0.4 = 0.394 → 39.4%.
  assert.match(mid, /^λ 0\.6: .*Naive accuracy 39\.4%; Aligned accuracy 95\.1%$/);
  await page.locator('section.curve').screenshot({ path: join(SHOTS, 'explain-keyboard-tooltip.png') });
  await page.close();
});

test('a cancelled curve keeps its points, marked; "Cancelling…" first', async () => {
  const page = await openCurve('vscode-dark', `delete s.curve; s.curveNote = 'Loss curve: 0 of 22 points…'; s.distance = { naive: 41.3, aligned: 23.9 }`);
  const partial = `(() => {
    const c = fixtures.curve();
    const keep = [0, 1, 2, 3, 4];
    const pick = (p) => ({ loss: keep.map((i) => p.loss[i]), acc: keep.map((i) => p.acc[i]) });
    return { lambdas: keep.map((i) => c.lambdas[i]), naive: pick(c.naive), aligned: pick(c.aligned), barrier: { naive: 0.4, aligned: 0.03 } };
  })()`;
  await postFromHost(page, `{ type: 'curve', curve: ${partial}, curveNote: 'Cancelling… the points computed so far are kept.' }`);
  await page.waitForFunction(() => document.querySelector('.curve-note')?.textContent?.startsWith('Cancelling'));
  await postFromHost(page, `{ type: 'curve', curve: ${partial}, curveNote: 'Loss curve cancelled after 10 of 22 points.' }`);
  await page.waitForSelector('.curve-note.stopped');
  assert.equal((await page.textContent('.curve-note'))?.trim(), 'Loss curve cancelled after 10 of 22 points.');
  assert.match((await page.textContent('p.barrier')) ?? '', /^Barrier over the points computed: naive 0\.4, aligned 0\.03$/);
  assert.match((await page.textContent('#curve-h')) ?? '', /^Loss along/, 'the loss curve, not the distance lines');
  assert.equal(await page.locator('section.curve canvas.chart').count(), 1);
  await page.locator('section.curve').screenshot({ path: join(SHOTS, 'explain-cancelled-curve.png') });
  await page.close();
});

for (const theme of ['vscode-dark', 'vscode-light'] as const) {
  test(`Export PNG (${theme}): solid background, a title naming models and data`, async () => {
    const page = await openCurve(theme);
    await clearPosted(page);
    await page.locator('section.curve').getByRole('button', { name: 'Export PNG' }).click();
    const [m] = await posted(page);
    const dataUrl = field(m, 'dataUrl');
    const file = join(SHOTS, `explain-export-${theme}.png`);
    writeFileSync(file, Buffer.from(dataUrl.split(',')[1], 'base64'));
    // Every pixel opaque, the corners the theme's background.
    const probe = await page.evaluate(async (url) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let transparent = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] < 255) transparent++;
      const bg = getComputedStyle(document.body).backgroundColor;
      return { transparent, corner: [d[0], d[1], d[2]], bg, width: c.width, height: c.height };
    }, dataUrl);
    assert.equal(probe.transparent, 0, 'no transparent pixel');
    const lum = (probe.corner[0] + probe.corner[1] + probe.corner[2]) / 3;
    if (theme === 'vscode-dark') assert.ok(lum < 80, `dark background ${probe.corner}`);
    else assert.ok(lum > 200, `light background ${probe.corner}`);
    assert.equal(field(m, 'suggestedName'), 'mlp_b-to-mlp_a-curve.png');
    await page.close();
  });
}

test('export names keep the part that tells A from B (folders for same-named files)', async () => {
  const page = await hx.open('alignment');
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({});
    s.a = { name: 'model.safetensors', path: '/w/gpt2-seed1/model.safetensors' };
    s.b = { name: 'model.safetensors', path: '/w/gpt2-seed2/model.safetensors' };
    return { type: 'init', state: s };
  })()`);
  await page.waitForSelector('canvas.chart');
  await clearPosted(page);
  await page.locator('section.curve').getByRole('button', { name: 'Export PNG' }).click();
  await postFromHost(page, `(() => {
    const s = fixtures.alignmentState({});
    const long = 'experiment_2026_11_30_resnet20_cifar10_width4_seed_000';
    s.a = { name: long + '17_epoch_0200_final.safetensors', path: '/w/a.safetensors' };
    s.b = { name: long + '42_epoch_0200_final.safetensors', path: '/w/b.safetensors' };
    return { type: 'init', state: s };
  })()`);
  await page.waitForFunction(() => document.querySelector('.models')?.textContent?.includes('42_epoch'));
  await page.locator('section.curve').getByRole('button', { name: 'Export PNG' }).click();
  const names = (await posted(page)).map((m) => field(m, 'suggestedName'));
  assert.equal(names[0], 'gpt2-seed2_model-to-gpt2-seed1_model-curve.png');
  assert.ok(names[1].length <= 80, names[1]);
  assert.match(names[1], /seed_00042.*-to-.*seed_00017/);
  await page.close();
});

test('Export PNG of a heatmap: enlarged with sharp cells, on a solid background, under a title naming group, view and models', async () => {
  const page = await openCurve('vscode-light');
  await clearPosted(page);
  await page.locator('.tabpanel').getByRole('button', { name: 'Export PNG' }).click();
  const [m] = await posted(page);
  const dataUrl = field(m, 'dataUrl');
  writeFileSync(join(SHOTS, 'explain-export-heatmap-light.png'), Buffer.from(dataUrl.split(',')[1], 'base64'));
  const probe = await page.evaluate(async (url) => {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let transparent = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] < 255) transparent++;
    return { transparent, width: c.width, height: c.height };
  }, dataUrl);
  assert.equal(probe.transparent, 0);
  // 64 cells enlarged ×10 to 640 px, plus the margins and two title lines.
  assert.equal(probe.width, 640 + 32);
  assert.equal(probe.height, 640 + 32 + 40);
  assert.equal(field(m, 'suggestedName'), 'mlp_b-to-mlp_a-P_0-after.png');
  await page.close();
});
