// Runs the extension's mocha suite inside code-server's real Node extension host. The web
// client, started with `enable-smoke-test-driver`, loads `extensionDevelopmentPath` and calls the
// `run()` of `extensionTestsPath`; it reports the host's console through window.codeAutomationLog
// and the exit code through window.codeAutomationExit (shared/notes/REAL-VSCODE.md).
import { format } from 'node:util';
import { startCodeServer } from '../../scripts/code-server.mjs';
import { HarnessError, launchBrowser } from './browser';
import { workbenchUrl } from './workbench';

export interface IntegrationRunOptions {
  extensionDevelopmentPath: string;
  /** Compiled mocha entry, e.g. <repo>/out/test/integration/index.js */
  extensionTestsPath: string;
  /** Folder opened in the workbench (tests may write into it). */
  workspace: string;
  /** Extra environment for the extension host. */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Receives each line the extension host logs (default: print to stdout). */
  onLine?: (line: string) => void;
}

export interface IntegrationResult {
  exitCode: number;
  /** From the `[mocha-summary]` line printed by test/integration/index.ts; undefined if none. */
  passed?: number;
  failed?: number;
  pending?: number;
  lines: string[];
}

export const SUMMARY_RE = /\[mocha-summary\] passes=(\d+) failures=(\d+) pending=(\d+)/;

// Harmless noise of an offline code-server (extension gallery, GitHub sign-in); shown only
// with REBASIN_TEST_VERBOSE.
const NOISE_RE =
  /No signed-in session resolved|open-vsx\.org|queryGalleryExtensions|marketplace|authentication provider 'github'|^\[(AgentHost|AgentHost:remote|ChatModelSelection|AccountPolicyGate)\]/;

export async function runIntegration(o: IntegrationRunOptions): Promise<IntegrationResult> {
  const timeoutMs = o.timeoutMs ?? 5 * 60_000;
  const onLine = o.onLine ?? ((l: string) => process.stdout.write(l + '\n'));
  const lines: string[] = [];
  const server = await startCodeServer({ smokeTestDriver: true, quiet: !process.env.REBASIN_TEST_VERBOSE, env: o.env });
  const browser = await launchBrowser().catch(async (e: unknown) => {
    await server.stop();
    throw e;
  });
  try {
    let exit!: (code: number) => void;
    const exited = new Promise<number>((r) => (exit = r));
    await browser.page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      // The host forwards console arguments unformatted (mocha's reporter uses printf style).
      const text = format(...(Array.isArray(args) ? args : [args]));
      if (!process.env.REBASIN_TEST_VERBOSE && NOISE_RE.test(text)) return;
      for (const line of text.split('\n')) {
        lines.push(line);
        onLine(type === 'error' ? `[exthost error] ${line}` : line);
      }
    });
    await browser.page.exposeFunction('codeAutomationExit', (code: number) => exit(Number(code)));
    await browser.page.goto(
      workbenchUrl(server, { folder: o.workspace, extensionDevelopmentPath: o.extensionDevelopmentPath, extensionTestsPath: o.extensionTestsPath }),
      // The workbench's load event took 68 s on a loaded 2-core machine (playwright's default
      // is 30 s); the run's own time limit below guards against a hang.
      { waitUntil: 'domcontentloaded', timeout: timeoutMs },
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new HarnessError('integration', `extension tests did not finish within ${timeoutMs / 1000} s (no codeAutomationExit)`)),
        timeoutMs,
      );
    });
    const exitCode = await Promise.race([exited, timedOut]).finally(() => clearTimeout(timer));
    const m = lines.map((l) => SUMMARY_RE.exec(l)).find((x) => x);
    return {
      exitCode,
      passed: m ? Number(m[1]) : undefined,
      failed: m ? Number(m[2]) : undefined,
      pending: m ? Number(m[3]) : undefined,
      lines,
    };
  } finally {
    await browser.close();
    await server.stop();
  }
}
