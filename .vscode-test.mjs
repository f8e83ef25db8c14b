// `npm run test:electron`: the same compiled mocha suite (out/test/integration/) in desktop VS
// Code downloaded by @vscode/test-electron. Needs a machine that can download VS Code; on the
// build machines (which cannot) `npm test` runs the suite in code-server instead.
import { defineConfig } from '@vscode/test-cli';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const workspace = mkdtempSync(join(tmpdir(), 'rebasin-electron-ws-'));

export default defineConfig({
  label: 'integration',
  files: 'out/test/integration/**/*.test.js',
  workspaceFolder: workspace,
  extensionDevelopmentPath: '.',
  env: { REBASIN_TEST_WORKSPACE: workspace },
  mocha: { ui: 'bdd', timeout: 120_000, color: false },
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
});
