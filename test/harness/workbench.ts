// Driving code-server's workbench like a person: open it, run palette commands, use the
// explorer's context menu, reach a webview's document, take screenshots into test-results/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame, FrameLocator, Page } from 'playwright-core';
import { startCodeServer, type RunningCodeServer } from '../../scripts/code-server.mjs';
import { HarnessError, launchBrowser, type LaunchedBrowser } from './browser';
import { repoRoot, resultsPath } from './paths';

/** The explorer rows: present once the workbench has opened the folder. */
export const EXPLORER_ROW = '.explorer-folders-view .monaco-list-row';

export interface WorkbenchUrlOptions {
  /** Absolute folder to open. */
  folder: string;
  /** Load this extension folder in development mode (node_modules resolve from it). */
  extensionDevelopmentPath?: string;
  /** The compiled mocha entry (`run()`), for integration tests. */
  extensionTestsPath?: string;
}

/** code-server's remote authority for the web client is the literal `remote`. */
export function remoteUri(absPath: string): string {
  return `vscode-remote://remote${absPath.startsWith('/') ? '' : '/'}${absPath}`;
}

/**
 * The workbench URL. Development/test paths go in the `payload` parameter, which the web client
 * honours only when the server runs with `enable-smoke-test-driver`.
 */
export function workbenchUrl(server: Pick<RunningCodeServer, 'url'>, o: WorkbenchUrlOptions): string {
  const payload: [string, string][] = [];
  if (o.extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remoteUri(o.extensionDevelopmentPath)]);
  if (o.extensionTestsPath) payload.push(['extensionTestsPath', remoteUri(o.extensionTestsPath)]);
  payload.push(['skipWelcome', 'true']);
  return `${server.url}/?folder=${encodeURIComponent(o.folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Opens `url` and waits until the explorer lists the folder's entries (7 to 12 s seen). */
export async function openWorkbench(page: Page, url?: string, timeoutMs = 90_000): Promise<void> {
  // Not the load event: it took 68 s on a loaded 2-core machine; the explorer rows are the signal.
  if (url) await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  try {
    await page.locator(EXPLORER_ROW).first().waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    await screenshot(page, 'workbench-not-ready').catch(() => undefined);
    throw new HarnessError('workbench', `${page.url()}: explorer rows did not show within ${timeoutMs / 1000} s (see test-results/workbench-not-ready.png)`);
  }
}

/**
 * Runs a palette command by its shown title (e.g. "Re-Basin: Align Models"). Contributed
 * commands can register after the explorer shows, so it retries until `timeoutMs`.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget input').first();
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 3_000 });
      await input.press('Enter');
      return;
    } catch {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) {
        await screenshot(page, 'command-not-found').catch(() => undefined);
        throw new HarnessError('workbench', `command palette: no command titled "${title}" within ${timeoutMs / 1000} s`);
      }
      await page.waitForTimeout(1_000);
    }
  }
}

/** The explorer row showing `name` (top-level or expanded). */
export function explorerRow(page: Page, name: string) {
  return page.locator(EXPLORER_ROW, { has: page.locator('.label-name', { hasText: name }) }).first();
}

/** Right-clicks the explorer row of `fileName` and clicks the menu item whose text is `itemText`. */
export async function contextMenu(page: Page, fileName: string, itemText: string, timeoutMs = 15_000): Promise<void> {
  const row = explorerRow(page, fileName);
  await row.waitFor({ state: 'visible', timeout: timeoutMs });
  await row.click({ button: 'right' });
  const item = page.locator('.monaco-menu .action-item', { hasText: itemText }).first();
  try {
    await item.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch {
    await screenshot(page, 'context-menu-item-missing').catch(() => undefined);
    await page.keyboard.press('Escape');
    throw new HarnessError('workbench', `${fileName}: explorer context menu has no item "${itemText}"`);
  }
  await item.click();
}

/**
 * Right-clicks `file` in the explorer and clicks `item`, retrying until the extension host has
 * contributed it (its menu items appear once the extension is loaded).
 */
export async function menuItem(page: Page, file: string, item: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    await explorerRow(page, file).waitFor({ state: 'visible', timeout: 30_000 });
    await explorerRow(page, file).click({ button: 'right' });
    const entry = page.locator('.monaco-menu .action-item', { hasText: item }).first();
    try {
      await entry.waitFor({ state: 'visible', timeout: 5_000 });
      await entry.click();
      // Under load a click can land while the menu is still settling: the item stays highlighted
      // and the menu open. Enter then runs the highlighted item, as a person would.
      const menu = page.locator('.monaco-menu').first();
      await page.waitForTimeout(1_000);
      if (await menu.isVisible().catch(() => false)) await page.keyboard.press('Enter');
      return;
    } catch (e) {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw e;
      await page.waitForTimeout(2_000);
    }
  }
}

/**
 * Right-clicks `file`, clicks `item`, then the quick-pick row showing `row`. Right after start-up
 * the click can land before the extension host has the command and the pick never shows: a person
 * clicks again, once. `shotName` saves a screenshot of a failed attempt.
 */
export async function menuItemThenPick(page: Page, file: string, item: string, row: string, shotName?: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await menuItem(page, file, item);
    try {
      await pickRow(page, row, 20_000);
      return;
    } catch (e) {
      if (shotName) await screenshot(page, `${shotName}-attempt-${attempt}`).catch(() => undefined);
      if (attempt === 2) throw e;
      await page.keyboard.press('Escape');
    }
  }
}

/**
 * Waits for a notification with `text` in the notification centre (with the smoke-test driver
 * toasts only go there), reopening the centre: it hides when its last entry closes.
 */
export async function notification(page: Page, text: string, ms = 60_000) {
  const item = page.locator('.notifications-center .notification-list-item', { hasText: text }).first();
  for (const deadline = Date.now() + ms; ; ) {
    if (!(await page.locator('.notifications-center').first().isVisible().catch(() => false))) {
      // The status bar's bell toggles the centre (quick even on a loaded machine, where the palette
      // can take longer than its 10 s to list the command); the palette where there is no bell.
      const bell = page.locator('[id="status.notifications"]').first();
      if (await bell.isVisible().catch(() => false)) await bell.click({ timeout: 10_000 }).catch(() => undefined);
      else {
        await runCommand(page, 'Notifications: Show Notifications', 10_000).catch(async (e: unknown) => {
          await page.keyboard.press('Escape');
          if (Date.now() > deadline) throw e;
        });
      }
    }
    try {
      await item.waitFor({ state: 'visible', timeout: 2_000 });
      return item;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

/**
 * The document inside a webview (two iframes deep). With several webviews open, pass `index`
 * (in DOM order) or use findFrame; without it, playwright fails when more than one matches.
 */
export function webviewFrame(page: Page, index?: number): FrameLocator {
  const outer = page.locator('iframe.webview.ready');
  return (index === undefined ? outer : outer.nth(index)).contentFrame().locator('#active-frame').contentFrame();
}

/** The first frame of the page (any webview's document included) that has `selector`. */
export async function findFrame(page: Page, selector: string, timeoutMs = 60_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      if ((await f.locator(selector).count().catch(() => 0)) > 0) return f;
    }
    if (Date.now() > deadline) {
      await screenshot(page, 'frame-not-found').catch(() => undefined);
      throw new HarnessError('workbench', `no frame showed \`${selector}\` within ${timeoutMs / 1000} s`);
    }
    await page.waitForTimeout(500);
  }
}

/** The part of a page's <canvas> that canvasPixels reads. */
interface CanvasLike {
  readonly width: number;
  readonly height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { readonly data: ArrayLike<number> } } | null;
}

/** Size and number of distinct colours of a canvas (read back with getImageData). */
export async function canvasPixels(frame: Frame, selector: string): Promise<{ width: number; height: number; colours: number; nonBlank: number }> {
  return frame.locator(selector).first().evaluate((el) => {
    // This runs in the page; the harness compiles without DOM types, so the canvas is typed here.
    const c = el as unknown as CanvasLike;
    const ctx = c.getContext('2d');
    if (!ctx || c.width === 0 || c.height === 0) return { width: c.width, height: c.height, colours: 0, nonBlank: 0 };
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    let nonBlank = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) nonBlank++;
      seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    }
    return { width: c.width, height: c.height, colours: seen.size, nonBlank };
  });
}

/** Runs `step`; on failure saves a screenshot named `name` first. */
export async function shotOnFailure<T>(page: Page, name: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    // Notifications only reach the notification centre under the smoke-test driver: show it.
    await page.keyboard.press('Escape').catch(() => undefined);
    await runCommand(page, 'Notifications: Show Notifications', 5_000).catch(() => undefined);
    await page.waitForTimeout(500);
    await screenshot(page, `${name}-failed`).catch(() => undefined);
    throw e;
  }
}

/** Clicks the quick-pick row showing `text` once it shows. */
export async function pickRow(page: Page, text: string, ms = 30_000): Promise<void> {
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ state: 'visible', timeout: ms });
  await row.click();
}

/** Saves a full-page screenshot to test-results/<name>.png; returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = resultsPath(`${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path });
  return path;
}

export interface Workbench {
  server: RunningCodeServer;
  browser: LaunchedBrowser;
  page: Page;
  /** The opened folder. */
  workspace: string;
  close(): Promise<void>;
}

export interface StartWorkbenchOptions {
  /** Folder to open; a fresh temp folder when omitted (removed on close). */
  workspace?: string;
  /** Extension folder loaded in development mode; defaults to this repo (run the build first). Pass null for none. */
  extensionDevelopmentPath?: string | null;
  /** .vsix files installed into the fresh extensions folder before start. */
  installVsix?: string[];
  /** Extra environment for the server and its extension hosts. */
  env?: Record<string, string>;
  /** User settings merged over the harness defaults (scripts/code-server.mjs DEFAULT_SETTINGS). */
  settings?: Record<string, unknown>;
  /**
   * Open the folder untrusted, in Restricted Mode (workspace trust on, no startup prompt).
   * Default false: the server runs with `--disable-workspace-trust`, so every folder is trusted.
   */
  restricted?: boolean;
  /** Echo the server's output (default: only when REBASIN_TEST_VERBOSE is set). */
  verbose?: boolean;
  /** The browser window's size (default 1400 × 900). */
  viewport?: { width: number; height: number };
}

/**
 * Starts code-server + chromium and opens the workbench on `workspace` with the extension
 * loaded from this repo in development mode. Always `close()` it (in a finally / after hook).
 */
export async function startWorkbench(o: StartWorkbenchOptions = {}): Promise<Workbench> {
  const ownWorkspace = o.workspace === undefined;
  const workspace = o.workspace ?? mkdtempSync(join(tmpdir(), 'rebasin-ws-'));
  const devPath = o.extensionDevelopmentPath === undefined ? repoRoot : o.extensionDevelopmentPath;
  const server = await startCodeServer({
    smokeTestDriver: true,
    installVsix: o.installVsix,
    env: o.env,
    // Restricted Mode without the startup trust dialog (a modal the journey would have to dismiss).
    settings: o.restricted ? { 'security.workspace.trust.startupPrompt': 'never', ...o.settings } : o.settings,
    workspaceTrust: o.restricted ?? false,
    quiet: !(o.verbose ?? Boolean(process.env.REBASIN_TEST_VERBOSE)),
  });
  let browser: LaunchedBrowser | undefined;
  const close = async () => {
    await browser?.close();
    await server.stop();
    if (ownWorkspace) rmSync(workspace, { recursive: true, force: true });
  };
  try {
    browser = await launchBrowser({ viewport: o.viewport });
    await openWorkbench(browser.page, workbenchUrl(server, { folder: workspace, extensionDevelopmentPath: devPath ?? undefined }));
    return { server, browser, page: browser.page, workspace, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * startWorkbench, up to three times: on a loaded machine the workbench's first page load can
 * exceed its 30 s, and a person reloads. `label` prefixes the log line of a failed attempt.
 */
export async function startWorkbenchRetrying(o: StartWorkbenchOptions, label: string): Promise<Workbench> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorkbench(o);
    } catch (e) {
      if (attempt === 3) throw e;
      console.log(`[${label}] workbench start attempt ${attempt} failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
}
