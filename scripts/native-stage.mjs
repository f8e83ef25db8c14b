// `npm test`'s `native` stage: the engine tests (test/unit/engine/compute/compute*.test.ts,
// engine-backend, engine-client) a second time on the native `tensorflow` backend, whenever it can be had here:
// tfjs-node installed with its addon, else the build of `npm run native:build` (made on demand
// into its cache outside the clone, minutes the first time, a no-op after). When neither is
// possible the stage is skipped with one line saying why; that is not a failure.
//
// Imported by scripts/test-all.mjs for `nativePlan`; run as a script it is the stage's command:
//   node scripts/native-stage.mjs <tfjs-node dir or ""> <test files...>

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The engine test files that compute with tfjs (the others never touch a backend). */
export function engineTestFiles(files) {
  return files.filter((f) => /(^|\/)(compute[^/]*|engine-backend|engine-client)(\.spawn)?\.test\.ts$/.test(f));
}

/** tfjs-node in node_modules with a built addon (a normal `npm install` where the download worked). */
function installedAddon() {
  const lib = join(root, 'node_modules', '@tensorflow', 'tfjs-node', 'lib');
  return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, 'tfjs_binding.node')));
}

/**
 * The stage's plan for test-all: `{ cmd, counts, timeoutMin }`, or `{ none: reason }` when the
 * native backend cannot be had here. Builds on demand (progress on stderr).
 */
export async function nativePlan(allUnitFiles) {
  const files = engineTestFiles(allUnitFiles);
  if (!files.length) return { none: 'no engine test files' };
  let dir = '';
  if (!installedAddon()) {
    const r = await buildNative();
    if (r.code !== 0) {
      const why = r.stderr.trim().split('\n').at(-1)?.replace(/^native:build: (cannot build the native backend: )?/, '') || `native build exited ${r.code}`;
      return { none: `the native backend cannot be built here, engine tests ran on wasm only: ${why}` };
    }
    dir = r.stdout.trim();
  }
  return { cmd: [process.execPath, 'scripts/native-stage.mjs', dir, ...files], counts: true, timeoutMin: 15 };
}

/** `native-build.mjs --print-dir`, its progress shown as it comes, with a time limit. */
function buildNative() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'scripts', 'native-build.mjs'), '--print-dir'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => {
      stderr += c;
      process.stderr.write(c);
    });
    const timer = setTimeout(() => {
      stderr += 'native:build: took longer than 15 min, stopped\n';
      child.kill('SIGTERM');
    }, 15 * 60_000);
    child.on('error', (e) => (stderr += `native:build: ${e.message}\n`));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [dir, ...files] = process.argv.slice(2);
  const env = { ...process.env, REBASIN_TEST_BACKEND: 'tensorflow' };
  if (dir) env.REBASIN_TFJS_NODE = dir;
  else delete env.REBASIN_TFJS_NODE;
  console.log(`native: engine tests on the tensorflow backend (${dir ? `REBASIN_TFJS_NODE=${dir}` : 'tfjs-node from node_modules'})`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
