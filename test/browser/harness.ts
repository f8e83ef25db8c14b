/**
 * Browser-test harness: builds the bundles, serves the repository's dist/, media/ and
 * test/browser/ on 127.0.0.1, and opens each webview bundle in Debian's chromium (through
 * playwright-core) inside a page with the extension's CSP, a stand-in `acquireVsCodeApi` that
 * records posted messages and state, and a body theme class. The page collects console
 * warnings, page errors and CSP violations so tests can assert on them.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';

export const ROOT = join(__dirname, '..', '..');
export const SHOTS = join(ROOT, 'test-results', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export type ViewName = 'alignment' | 'barriers' | 'inspector' | 'diff';
export type Theme = 'vscode-dark' | 'vscode-light' | 'vscode-high-contrast';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.html': 'text/html',
  '.map': 'application/json',
  '.png': 'image/png',
};

/** Runs `node scripts/build.mjs` once per process. */
let built = false;
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'pipe' });
  built = true;
}

function pageHtml(view: ViewName, theme: Theme, origin: string, initialState: string | undefined): string {
  const nonce = 'testnonce' + Math.random().toString(36).slice(2);
  // Same CSP as the extension's webview HTML (cspSource = this server's origin).
  const csp = `default-src 'none'; img-src ${origin} data:; style-src ${origin}; script-src 'nonce-${nonce}'; font-src ${origin};`;
  return `<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="stylesheet" href="${origin}/media/report.css">
<link rel="stylesheet" href="${origin}/media/webview.css">
<link rel="stylesheet" href="${origin}/media/${view}.css">
</head>
<body class="${theme}">
<div id="root"></div>
<script nonce="${nonce}">
  window.__posted = [];
  window.__warnings = [];
  window.__csp = [];
  window.__state = ${initialState ?? 'undefined'};
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  const warn = console.warn.bind(console);
  console.warn = (...a) => { window.__warnings.push(a.join(' ')); warn(...a); };
  let acquired = false;
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('acquireVsCodeApi called twice');
    acquired = true;
    return {
      postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))),
      getState: () => window.__state,
      setState: (s) => { window.__state = JSON.parse(JSON.stringify(s)); },
    };
  };
</script>
<script nonce="${nonce}" src="${origin}/test/browser/pageFixtures.js"></script>
<script nonce="${nonce}" src="${origin}/dist/webview/${view}.js"></script>
</body></html>`;
}

export interface Harness {
  browser: Browser;
  server: Server;
  origin: string;
  /** Opens a fresh page for a view; waits until it posted `ready`. */
  open(view: ViewName, theme?: Theme, opts?: { width?: number; height?: number; initialState?: unknown }): Promise<Page>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  buildOnce();
  mkdirSync(SHOTS, { recursive: true });
  const pages = new Map<string, string>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const page = pages.get(url.pathname);
    if (page !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(page);
      return;
    }
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
    const allowed = ['dist/webview/', 'media/', 'test/browser/'].some((p) => rel.startsWith(p));
    const file = join(ROOT, rel);
    if (!allowed || !existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let counter = 0;
  return {
    browser,
    server,
    origin,
    async open(view, theme = 'vscode-dark', opts = {}) {
      const path = `/page/${view}-${counter++}.html`;
      pages.set(path, pageHtml(view, theme, origin, opts.initialState === undefined ? undefined : JSON.stringify(opts.initialState)));
      const page = await browser.newPage({ viewport: { width: opts.width ?? 1100, height: opts.height ?? 900 }, deviceScaleFactor: 1 });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      errorsOf.set(page, errors);
      await page.goto(origin + path);
      await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
      return page;
    },
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const errorsOf = new WeakMap<Page, string[]>();

/** Uncaught exceptions the page reported since it was opened. */
export function pageErrors(page: Page): string[] {
  return errorsOf.get(page) ?? [];
}

export interface Posted {
  readonly type: string;
  readonly [k: string]: unknown;
}

/** A string field of a posted message (throws when absent). */
export function field(m: Posted | undefined, key: string): string {
  const v = m?.[key];
  if (typeof v !== 'string') throw new Error(`posted message has no string \`${key}\``);
  return v;
}

export async function posted(page: Page): Promise<Posted[]> {
  return page.evaluate(() => (window as unknown as { __posted: Posted[] }).__posted);
}

export async function clearPosted(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __posted: Posted[] }).__posted = [];
  });
}

export async function warnings(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __warnings: string[] }).__warnings);
}

export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
}

/** Posts a message to the page as the extension host would (built by page-side JS `expr`). */
export async function postFromHost(page: Page, expr: string): Promise<void> {
  await page.evaluate(`window.postMessage(${expr}, '*')`);
}

/** Pixel statistics of a canvas: non-transparent count, distinct colours (capped), size. */
export async function canvasStats(page: Page, selector: string): Promise<{ width: number; height: number; opaque: number; colors: number }> {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement | null;
    if (!c) throw new Error(`no canvas ${sel}`);
    const ctx = c.getContext('2d');
    if (!ctx) throw new Error('no 2d context');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let opaque = 0;
    const colors = new Set<number>();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) opaque++;
      if (colors.size < 1000) colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    }
    return { width: c.width, height: c.height, opaque, colors: colors.size };
  }, selector);
}

/** Parses simple CSV (quoted fields supported). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (ch !== '\r') field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
