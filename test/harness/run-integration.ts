// `npm run test:integration`: compiles test/integration/, prepares an empty temp workspace,
// runs the suite in code-server and prints node:test-style `# pass N` / `# fail N` lines that
// scripts/test-all.mjs counts. Exit code 0 only when the host exited 0 and nothing failed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIntegration } from './build-integration.mjs';
import { runIntegration } from './integration';
import { repoRoot } from './paths';

async function main(): Promise<number> {
  const tests = await buildIntegration();
  if (tests.length === 0) {
    console.log('integration: no test files in test/integration/ yet');
    console.log('# pass 0\n# fail 0');
    return 0;
  }
  console.log(`integration: ${tests.length} file(s): ${tests.join(', ')}`);
  const workspace = mkdtempSync(join(tmpdir(), 'rebasin-it-ws-'));
  const started = Date.now();
  try {
    const r = await runIntegration({
      extensionDevelopmentPath: process.env.REBASIN_EXTENSION_PATH ?? repoRoot,
      extensionTestsPath: join(repoRoot, 'out', 'test', 'integration', 'index.js'),
      workspace,
      // Tests also find it as vscode.workspace.workspaceFolders[0].
      env: { REBASIN_TEST_WORKSPACE: workspace },
    });
    const secs = Math.round((Date.now() - started) / 1000);
    if (r.passed === undefined || r.failed === undefined) {
      console.log(`integration: extension host exited ${r.exitCode} after ${secs} s without a [mocha-summary] line (run() never finished?)`);
      console.log(`# pass 0\n# fail 1`);
      return 1;
    }
    console.log(`integration: extension host exited ${r.exitCode} after ${secs} s`);
    const failed = r.failed + (r.exitCode !== 0 && r.failed === 0 ? 1 : 0);
    console.log(`# pass ${r.passed}\n# fail ${failed}\n# skipped ${r.pending ?? 0}`);
    return r.exitCode === 0 && failed === 0 ? 0 : 1;
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`integration: ${e instanceof Error ? e.message : String(e)}`);
    console.log('# pass 0\n# fail 1');
    process.exit(1);
  },
);
