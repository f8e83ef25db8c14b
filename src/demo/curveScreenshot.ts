/**
 * curve.png: the interpolation plot exactly as the report (and the alignment panel) draws it,
 * taken from the written report.html in headless Debian chromium through playwright-core.
 * The chart is the webview's own chart.js configuration, so the image and the panel agree.
 * Without a chromium the demo skips the image and says how to get it.
 */
import * as fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export class CurvePngError extends Error {
  constructor(
    readonly kind: 'BrowserMissing',
    message: string,
  ) {
    super(message);
    this.name = 'CurvePngError';
  }
}

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

function findChromium(): string {
  const fromEnv = process.env.REBASIN_CHROMIUM;
  if (fromEnv && fs.existsSync(fromEnv)) return fromEnv;
  const found = CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) throw new CurvePngError('BrowserMissing', 'curve.png needs a chromium (apt-get install chromium, or set REBASIN_CHROMIUM); the curve is in report.html');
  return found;
}

/** Screenshots the report's chart (light theme) into `outFile`, written atomically. */
export async function screenshotCurve(reportHtml: string, outFile: string): Promise<void> {
  const executablePath = findChromium();
  // playwright-core is a development dependency: the demo runs from a checkout after `npm ci`.
  // It launches with a fresh temporary profile of its own.
  const { chromium } = await import('playwright-core');
  const tmp = `${outFile}.${process.pid}.tmp`;
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 }, deviceScaleFactor: 2 });
    await page.goto(pathToFileURL(reportHtml).href);
    await page.evaluate(() => {
      // Runs in the page; Node code compiles without DOM types (tsconfig.node.json).
      const { document } = globalThis as unknown as { document: { body: { classList: { add(c: string): void; remove(c: string): void } } } };
      document.body.classList.remove('vscode-dark');
      document.body.classList.add('vscode-light');
    });
    const box = page.locator('.chart-box').first();
    await box.waitFor({ state: 'visible', timeout: 15_000 });
    // Let chart.js finish its first layout after the theme switch.
    await page.waitForTimeout(300);
    // The chart alone: its legend carries both barrier values.
    await box.screenshot({ path: tmp, type: 'png', animations: 'disabled' });
    fs.renameSync(tmp, outFile);
  } finally {
    fs.rmSync(tmp, { force: true });
    await browser.close();
  }
}
