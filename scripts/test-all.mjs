// `npm test`: every check of the project, in order, stopping nothing early so one run shows all
// failures: typecheck, build, unit tests (pure files two at a time, then the files that spawn
// workers or processes one at a time), the engine tests on native tensorflow (when it can be built), webview
// browser tests, the code-server install from an
// empty cache, the extension's mocha suite in a real VS Code extension host (code-server), and the
// UI journeys (chromium driving code-server). Prints a per-stage table and ends with exactly one
// line `N passed, N failed` (totals). A stage without test files counts 0 and says so; a stage
// that crashes or exits non-zero counts as a failure even when its own counts were zero.
//
// Before the first stage it provisions what npm cannot install: the Debian packages the chosen
// stages need (scripts/system-deps.mjs), installed with apt-get when running as root, else it
// stops with one line giving the command. code-server and Node 24 come from npm
// (scripts/code-server.mjs).
//
// Developer filters: `npm test -- --only unit` (both unit stages), `--only unit-pure`,
// `--only unit,browser`, `--skip ui`, `--list`.
// Stages needing built bundles (browser, integration, ui) pull in `build` automatically.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativePlan } from './native-stage.mjs';
import { codeServerInstalled } from './code-server.mjs';
import { hasAptGet, installSystemPackages, packagesFor, planSystemPackages, probeInstalled } from './system-deps.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

/** Files under `dir` (recursive) whose names end with `suffix`, sorted; [] when dir is missing. */
function find(dir, suffix, recursive = true) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) {
      if (recursive) out.push(...find(p, suffix, recursive));
    } else if (f.endsWith(suffix)) out.push(relative(root, p));
  }
  return out.sort();
}

const nodeTest = (files, concurrency = 1) => [
  process.execPath,
  '--import', 'tsx',
  '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec',
  ...files,
];

// The unit tests in two stages (docs/testing.md, "Where a new test goes"): a file that starts
// workers or processes (EngineClient, dist/worker.js, dist/cli.js, child_process, or
// scripts/build.mjs in a `before`, which rewrites dist/) is named `*.spawn.test.ts` and runs one
// file at a time; every other file is pure and runs two at a time (the CI machine has 2 cores).
const SPAWN_SUFFIX = '.spawn.test.ts';
const unitFiles = () => find('test/unit', '.test.ts');
const PURE_CONCURRENCY = 2;

// Each stage: a command (or null: nothing to run yet, with the reason), whether it reports test
// counts, and a hang guard.
const STAGES = {
  typecheck: () => ({ cmd: [process.execPath, 'node_modules/typescript/bin/tsc', '-p', '.', '--noEmit'], counts: false, timeoutMin: 10 }),
  // Layer rules (.dependency-cruiser.cjs, docs/architecture.md): `npm run check:layers`.
  layers: () => ({ cmd: ['npm', 'run', '--silent', 'check:layers'], counts: false, timeoutMin: 5 }),
  build: () => ({ cmd: [process.execPath, 'scripts/build.mjs'], counts: false, timeoutMin: 10 }),
  'unit-pure': () => {
    const files = unitFiles().filter((f) => !f.endsWith(SPAWN_SUFFIX));
    return files.length ? { cmd: nodeTest(files, PURE_CONCURRENCY), counts: true, timeoutMin: 30 } : { none: 'no pure test/unit/**/*.test.ts yet' };
  },
  'unit-spawn': () => {
    const files = unitFiles().filter((f) => f.endsWith(SPAWN_SUFFIX));
    return files.length ? { cmd: nodeTest(files), counts: true, timeoutMin: 30 } : { none: `no test/unit/**/*${SPAWN_SUFFIX} yet` };
  },
  // The engine tests again on native tensorflow, built on demand (scripts/native-stage.mjs).
  native: () => nativePlan(unitFiles()),
  browser: () => {
    const files = find('test/browser', '.test.ts', false);
    return files.length ? { cmd: nodeTest(files), counts: true, timeoutMin: 15 } : { none: 'no test/browser/*.test.ts yet' };
  },
  install: () => {
    const files = find('test/install', '.test.ts', false);
    return files.length ? { cmd: nodeTest(files), counts: true, timeoutMin: 25 } : { none: 'no test/install/*.test.ts yet' };
  },
  integration: () => {
    const files = find('test/integration', '.test.ts');
    return files.length
      ? { cmd: [process.execPath, '--import', 'tsx', 'test/harness/run-integration.ts'], counts: true, timeoutMin: 20 }
      : { none: 'no test/integration/**/*.test.ts yet' };
  },
  ui: () => {
    const files = find('test/ui', '.test.ts', false);
    return files.length ? { cmd: nodeTest(files), counts: true, timeoutMin: 30 } : { none: 'no test/ui/*.test.ts yet' };
  },
};
const ORDER = Object.keys(STAGES);
const NEEDS_BUILD = new Set(['browser', 'integration', 'ui']);
// Names that stand for several stages in --only / --skip: `unit` is every unit test.
const GROUPS = { unit: ['unit-pure', 'unit-spawn'] };
const expand = (names) => names.flatMap((n) => GROUPS[n] ?? [n]);

function parseArgs(argv) {
  let only = null;
  const skip = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i] ?? '');
    if (a === '--only' || a.startsWith('--only=')) only = new Set(expand(val().split(',').filter(Boolean)));
    else if (a === '--skip' || a.startsWith('--skip=')) for (const s of expand(val().split(',').filter(Boolean))) skip.add(s);
    else if (a === '--list') {
      console.log(ORDER.join('\n'));
      for (const [group, stages] of Object.entries(GROUPS)) console.log(`${group} (= ${stages.join(' + ')})`);
      process.exit(0);
    } else {
      console.error(`test-all: unknown argument ${a} (use --only a,b / --skip a,b / --list)`);
      process.exit(2);
    }
  }
  for (const s of [...(only ?? []), ...skip]) {
    if (!ORDER.includes(s)) {
      console.error(`test-all: unknown stage ${s} (stages: ${ORDER.join(', ')}; ${Object.keys(GROUPS).join(', ')} for groups)`);
      process.exit(2);
    }
  }
  let chosen = ORDER.filter((s) => (only ? only.has(s) : true) && !skip.has(s));
  if (only && chosen.some((s) => NEEDS_BUILD.has(s)) && !skip.has('build') && !chosen.includes('build')) {
    chosen = ORDER.filter((s) => s === 'build' || chosen.includes(s));
  }
  return chosen;
}

// node:test summaries: TAP `# pass N`, spec `ℹ pass N`. The runner's totals come last.
function parseCounts(text) {
  const get = (name) => {
    const re = new RegExp(`^(?:# |\\u2139 )${name} (\\d+)\\s*$`, 'gm');
    let m;
    let last;
    while ((m = re.exec(text))) last = Number(m[1]);
    return last;
  };
  const pass = get('pass');
  const fail = get('fail');
  if (pass === undefined || fail === undefined) return null;
  return { pass, fail: fail + (get('cancelled') ?? 0), skipped: (get('skipped') ?? 0) + (get('todo') ?? 0) };
}

/** Runs a command, streaming its output, capturing it for parsing; resolves with code + text. */
function runStage(name, cmd, timeoutMin) {
  return new Promise((resolve) => {
    let text = '';
    const child = spawn(cmd[0], cmd.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: stageEnv,
      detached: true, // own process group, so the hang guard can end everything it started
    });
    const keep = (chunk, stream) => {
      stream.write(chunk);
      text += chunk.toString();
      if (text.length > 2_000_000) text = text.slice(-1_000_000);
    };
    child.stdout.on('data', (c) => keep(c, process.stdout));
    child.stderr.on('data', (c) => keep(c, process.stderr));
    // The stage has its own process group: end it politely (its servers clean up on SIGTERM),
    // then for sure.
    const end = () => {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000).unref();
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`test-all: ${name} ran longer than ${timeoutMin} min, stopping it`);
      end();
    }, timeoutMin * 60_000);
    // Ctrl-C reaches only the foreground group, not the stage's: pass it on, then stop.
    const onSignal = () => {
      end();
      interrupted = true;
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    child.on('error', (e) => {
      text += `\n${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve({ code: timedOut ? 124 : code ?? (signal ? 128 : 1), text });
    });
  });
}

/**
 * Installs the Debian packages the chosen stages need (root), or stops with one line giving the
 * command (anyone else). Only stages that will run count.
 */
function provisionSystemPackages(stages) {
  const needed = packagesFor(stages, { codeServerInstalled: codeServerInstalled() });
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const plan = planSystemPackages(needed, { probe: probeInstalled, isRoot, hasApt: hasAptGet() });
  if (plan.action === 'none') return;
  console.error(plan.line);
  if (plan.action === 'stop') process.exit(1);
  const started = Date.now();
  const failure = installSystemPackages(plan.missing, { probe: probeInstalled });
  if (failure) {
    console.error(failure);
    process.exit(1);
  }
  console.error(`test-all: installed ${plan.missing.join(' ')} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

// The browser harnesses read CHROMIUM_PATH, the workbench harness and the demo REBASIN_CHROMIUM.
const stageEnv = { ...process.env, FORCE_COLOR: '0' };
if (stageEnv.REBASIN_CHROMIUM && !stageEnv.CHROMIUM_PATH) stageEnv.CHROMIUM_PATH = stageEnv.REBASIN_CHROMIUM;

let interrupted = false;
const chosen = parseArgs(process.argv.slice(2));
const t0 = Date.now();
provisionSystemPackages(chosen.filter((name) => !STAGES[name]().none));
const results = [];
for (const name of chosen) {
  if (interrupted) break;
  const started = Date.now(); // planning may build (the native stage): count it
  const plan = await STAGES[name]();
  if (plan.none) {
    console.log(`\n=== ${name}: skipped, ${plan.none} (counts 0)`);
    results.push({ name, pass: 0, fail: 0, skipped: 0, secs: (Date.now() - started) / 1000, status: 'none', note: plan.none });
    continue;
  }
  console.log(`\n=== ${name}: ${plan.cmd.slice(1).join(' ')}`);
  const { code, text } = await runStage(name, plan.cmd, plan.timeoutMin);
  const secs = (Date.now() - started) / 1000;
  const r = { name, pass: 0, fail: 0, skipped: 0, secs, status: code === 0 ? 'ok' : 'FAILED', note: '' };
  if (plan.counts) {
    const c = parseCounts(text);
    if (c) Object.assign(r, c);
    else r.note = 'no test summary in its output';
    // A crash, a hang or a non-zero exit without a counted failure still fails the stage.
    if ((code !== 0 || !c) && r.fail === 0) {
      r.fail = 1;
      r.status = 'FAILED';
      r.note ||= `exited ${code} with no failing test counted`;
    }
  } else if (code !== 0) {
    r.fail = 1;
    r.note = `exited ${code}`;
  }
  if (code === 124) r.note = 'timed out';
  results.push(r);
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
console.log('\n' + pad('stage', 12) + lpad('passed', 7) + lpad('failed', 7) + lpad('skipped', 8) + lpad('time', 8) + '  result');
for (const r of results) {
  const result = r.status === 'none' ? `none (${r.note})` : r.status + (r.note ? ` (${r.note})` : '');
  console.log(pad(r.name, 12) + lpad(r.pass, 7) + lpad(r.fail, 7) + lpad(r.skipped, 8) + lpad(`${r.secs.toFixed(0)}s`, 8) + '  ' + result);
}
const passed = results.reduce((s, r) => s + r.pass, 0);
const failed = results.reduce((s, r) => s + r.fail, 0);
console.log(`total time ${((Date.now() - t0) / 1000).toFixed(0)}s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || results.some((r) => r.status === 'FAILED') ? 1 : 0);
