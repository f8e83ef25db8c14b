// `npm test`'s `native` stage: the engine tests (test/unit/compute*.test.ts, engine-backend,
// engine-client) a second time on the native `tensorflow` backend, whenever it can be had here:
// tfjs-node installed with its addon, else the build of `npm run native:build` (made on demand
// into its cache outside the clone, minutes the first time, a no-op after). When neither is
// possible the stage is skipped with one line saying why; that is not a failure.
//
// Imported by scripts/test-all.mjs for `nativePlan`; run as a script it is the stage's command:
//   node scripts/native-stage.mjs <tfjs-node dir or ""> <test files...>

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The engine test files that compute with tfjs (the others never touch a backend). */
export function engineTestFiles(files) {
  return files.filter((f) => /(^|\/)(compute[^/]*|engine-backend|engine-client)\.test\.ts$/.test(f));
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
export function nativePlan(allUnitFiles) {
  const files = engineTestFiles(allUnitFiles);
  if (!files.length) return { none: 'no engine test files' };
  let dir = '';
  if (!installedAddon()) {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'native-build.mjs'), '--print-dir'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15 * 60_000,
    });
    process.stderr.write(r.stderr ?? '');
    if (r.status !== 0) {
      const why = (r.stderr ?? '').trim().split('\n').at(-1)?.replace(/^native:build: /, '')
        || (r.error ? r.error.message : `native build exited ${r.status ?? r.signal}`);
      console.log(`native: the native backend cannot be built here, so the engine tests run on wasm only (${why})`);
      return { none: `native backend unavailable: ${why}` };
    }
    dir = r.stdout.trim();
  }
  return { cmd: [process.execPath, 'scripts/native-stage.mjs', dir, ...files], counts: true, timeoutMin: 15 };
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
