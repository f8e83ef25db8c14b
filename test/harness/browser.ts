// Debian's chromium driven by playwright-core (playwright cannot download its own browsers on
// these machines). Flags from shared/notes/REAL-VSCODE.md: headless, no sandbox (root in CI), no
// GPU, no background traffic, a fresh profile folder and temporary HOME/XDG folders.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { isolatedEnv } from '../../scripts/code-server.mjs';

export class HarnessError extends Error {
  constructor(
    readonly kind: 'browser' | 'workbench' | 'integration',
    message: string,
  ) {
    super(message);
    this.name = 'HarnessError';
  }
}

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The chromium binary: env REBASIN_CHROMIUM, else Debian's. */
export function chromiumPath(): string {
  const candidates = [process.env.REBASIN_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new HarnessError('browser', '/usr/bin/chromium: not found (apt-get install -y chromium, or set REBASIN_CHROMIUM)');
}

export interface LaunchedBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Launches headless chromium with a fresh profile; returns its context and one page. */
export async function launchBrowser(opts: { viewport?: { width: number; height: number } } = {}): Promise<LaunchedBrowser> {
  const base = mkdtempSync(join(tmpdir(), 'rebasin-chromium-'));
  const env = isolatedEnv(join(base, 'home'));
  const context = await chromium.launchPersistentContext(join(base, 'profile'), {
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_ARGS],
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    viewport: opts.viewport ?? { width: 1400, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
