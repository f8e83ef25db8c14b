// Compiles the extension-host mocha suite (test/integration/index.ts and every
// test/integration/**/*.test.ts) to CommonJS in out/test/integration/, the layout both runners
// load: code-server (test/harness/run-integration.ts) and @vscode/test-cli (.vscode-test.mjs).
// `vscode` comes from the host; mocha and tfjs stay in node_modules (one shared instance).
import * as esbuild from 'esbuild';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const srcDir = join(root, 'test', 'integration');
const outDir = join(root, 'out', 'test', 'integration');

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Compiles the suite; returns the test files compiled (relative to the repo). */
export async function buildIntegration() {
  const tests = walk(srcDir).filter((f) => f.endsWith('.test.ts'));
  rmSync(outDir, { recursive: true, force: true }); // no stale compiled tests
  const entries = [join(srcDir, 'index.ts'), ...tests];
  await esbuild.build({
    entryPoints: entries,
    outdir: outDir,
    outbase: srcDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    logLevel: 'warning',
    external: ['vscode', 'mocha', '@tensorflow/*'],
  });
  return tests.map((t) => relative(root, t));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // No top-level await: run-integration.ts (CommonJS under tsx) requires this module.
  buildIntegration().then(
    (tests) => console.log(`compiled ${tests.length} integration test file(s) to ${relative(root, outDir)}/`),
    (e) => {
      console.error(`build-integration: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
