// `npm run docs:screenshots`: the screenshots of docs/extension.md's "Comparing two checkpoints",
// taken in the real workbench (code-server + chromium, as the UI journeys) and written to
// docs/images/. It trains two small MNIST MLPs from seeds 0 and 1 (the engine's `train` request,
// the demo's recipe at a smaller size), makes a stand-in fine-tune of the first (its last two
// layers nudged by seeded noise, the first two left alone), then clicks "Compare with…" as a
// person does for the two use cases:
//   compare-finetune.png       fine-tune vs base, "Compare as they are": which layers moved;
//   compare-seeds.png          seed 0 vs seed 1, "Align first, then compare": how much is permutation;
//   compare-seeds-tensor.png   the same view, one hidden matrix's histograms and |A−π(B)| heatmap.
// Needs the build (dist/) and code-server (npm run code-server:install), as the ui stage does.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { mnistDataDir } from '../src/core/data';
import { checkpointSummary, openCheckpoint } from '../src/core/safetensors';
import { EngineClient } from '../src/engine/client';
import { repoRoot } from '../test/harness/paths';
import { findFrame, menuItemThenPick, pickRow, runCommand, startWorkbenchRetrying, type Workbench } from '../test/harness/workbench';
import { writeNudged } from '../test/ui/checkpoints';

const OUT_DIR = join(repoRoot, 'docs', 'images');
const WIDTHS = [784, 128, 128, 128, 10];
/** The demo's recipe (docs/demo.md) on all 60 000 training images. */
const TRAIN = { epochs: 5, batchSize: 500, learningRate: 1e-3 } as const;
const BASE = 'mlp-seed0.safetensors';
const SEED1 = 'mlp-seed1.safetensors';
const FINETUNE = 'mlp-seed0-finetuned.safetensors';
/** The fine-tune's nudges, per layer, relative to each tensor's RMS: the head most, the layer below a little. */
const NUDGE_LAST = 0.3;
const NUDGE_BEFORE_LAST = 0.08;

async function trainSeeds(workspace: string): Promise<void> {
  const client = EngineClient.start({ backend: 'auto', workers: 1, workerScript: join(repoRoot, 'dist', 'worker.js') });
  try {
    for (const [seed, file] of [[0, BASE], [1, SEED1]] as const) {
      const r = await client.request({ kind: 'train', data: { path: mnistDataDir() }, widths: WIDTHS, epochs: TRAIN.epochs, batchSize: TRAIN.batchSize, learningRate: TRAIN.learningRate, seed, out: join(workspace, file) });
      console.log(`trained ${file} in ${r.seconds.toFixed(1)} s${r.testAcc !== undefined ? ` (test accuracy ${(100 * r.testAcc).toFixed(1)} %)` : ''}`);
    }
  } finally {
    await client.dispose();
  }
}

/** The base with its last two layers (weights and biases) nudged: a fine-tune that froze the rest. */
async function writeFinetune(workspace: string): Promise<void> {
  const ckpt = await openCheckpoint(join(workspace, BASE));
  const names = checkpointSummary(ckpt).tensors.map((t) => t.name);
  await ckpt.close();
  const layers = [...new Set(names.map((n) => n.slice(0, n.lastIndexOf('.'))))];
  const [beforeLast, last] = layers.slice(-2);
  const noise: Record<string, number> = {};
  for (const n of names) {
    if (n.startsWith(`${last}.`)) noise[n] = NUDGE_LAST;
    if (n.startsWith(`${beforeLast}.`)) noise[n] = NUDGE_BEFORE_LAST;
  }
  await writeNudged(join(workspace, BASE), join(workspace, FINETUNE), noise, 11);
  console.log(`wrote ${FINETUNE}: ${Object.keys(noise).join(', ')} nudged`);
}

/** Right-click `a` → Compare with… → `b` → `how`; resolves to the diff view's document. */
async function compare(page: Page, a: string, b: string, how: 'Compare as they are' | 'Align first, then compare', title: string) {
  await menuItemThenPick(page, a, 'Compare with…', b);
  await pickRow(page, how);
  const frame = await findFrame(page, `h1:text-is("${title}")`, 180_000);
  await frame.locator('canvas.layer-chart').waitFor({ state: 'visible', timeout: 30_000 });
  return frame;
}

/**
 * Saves the editor area (the diff view, without the side bar) as docs/images/<name>; with `part`,
 * only that element, from its left edge to `rightEdge`'s right edge (a margin around both).
 */
async function shoot(page: Page, name: string, part?: { element: Locator; rightEdge: Locator }): Promise<void> {
  await page.waitForTimeout(1_500); // the chart and fonts settle
  const file = join(OUT_DIR, name);
  if (part) {
    await part.element.scrollIntoViewIfNeeded();
    const [box, right] = [await part.element.boundingBox(), await part.rightEdge.boundingBox()];
    if (!box || !right) throw new Error(`${name}: the element to capture is not on screen`);
    const margin = 12;
    await page.screenshot({ path: file, clip: { x: box.x - margin, y: box.y - margin, width: right.x + right.width - box.x + 2 * margin, height: box.height + margin + 2 } });
  } else await page.locator('.part.editor').first().screenshot({ path: file });
  console.log(`saved ${file} (${Math.round(statSync(file).size / 1024)} KiB)`);
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const workspace = mkdtempSync(join(tmpdir(), 'rebasin-docs-'));
  let wb: Workbench | undefined;
  try {
    await trainSeeds(workspace);
    await writeFinetune(workspace);
    mkdirSync(join(workspace, '.vscode'));
    writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'rebasin.workers': 1 }));
    wb = await startWorkbenchRetrying({ workspace, extensionDevelopmentPath: repoRoot, viewport: { width: 1240, height: 860 } }, 'docs-screenshots');
    const { page } = wb;

    await compare(page, BASE, FINETUNE, 'Compare as they are', `${BASE} vs ${FINETUNE}`);
    await runCommand(page, 'View: Toggle Primary Side Bar Visibility');
    await shoot(page, 'compare-finetune.png');
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'View: Toggle Primary Side Bar Visibility');

    const seeds = await compare(page, BASE, SEED1, 'Align first, then compare', `${BASE} vs ${SEED1} (aligned)`);
    await runCommand(page, 'View: Toggle Primary Side Bar Visibility');
    await shoot(page, 'compare-seeds.png');
    // A hidden layer's matrix: permuted on both axes, so its picture shows what alignment left.
    await seeds.locator('tr.drawable[data-name$="1.weight"]').first().click();
    await seeds.locator('section.tensor-picture canvas.diff-heatmap').waitFor({ state: 'visible', timeout: 120_000 });
    const picture = seeds.locator('section.tensor-picture');
    await shoot(page, 'compare-seeds-tensor.png', { element: picture, rightEdge: picture.locator('figure.heatmap-box') });
  } finally {
    await wb?.close();
    rmSync(workspace, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`docs:screenshots: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  process.exitCode = 1;
});
