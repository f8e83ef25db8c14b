// The `install` stage of `npm test`: code-server and Node 24 installed as a fresh machine installs
// them, from inside an npm script (`npm run code-server:install`, so the outer npm's environment
// is there, as under `npm test`) into an empty cache folder, then started. The rebasin cache
// (~/.cache/rebasin-test) is never read: only npm's own download cache is shared, so packages are
// not downloaded again but everything is unpacked and built anew.
//
// A stage of its own, not a unit test: it takes minutes, needs a compiler and libkrb5-dev but no
// browser, and shows its own time in the table; `npm test -- --skip install` leaves it out.
//
// When the rebasin cache lacks this version, the checked install is moved there afterwards
// (adoptInstalls), so on a fresh machine the later stages do not build code-server a second time.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CODE_SERVER_VERSION, adoptInstalls, cacheRoot, isolatedEnv, startCodeServer } from '../../scripts/code-server.mjs';
import { repoRoot } from '../harness/paths';

const cache = mkdtempSync(join(tmpdir(), 'rebasin-install-test-'));
after(() => rmSync(cache, { recursive: true, force: true }));

/** Runs `npm run --silent code-server:install` into `cache`; stderr streams, stdout is kept. */
function npmRunInstall(): Promise<{ code: number | null; stdout: string; secs: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'code-server:install'], {
      cwd: repoRoot,
      env: { ...process.env, REBASIN_TEST_CACHE: cache },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, secs: (Date.now() - started) / 1000 }));
  });
}

describe('code-server install from inside an npm script, into an empty cache', () => {
  let installed: { cache: string; node: string; entry: string } | undefined;

  it('installs Node 24 and code-server and prints their paths', { timeout: 20 * 60_000 }, async () => {
    const r = await npmRunInstall();
    console.log(`install: npm run code-server:install took ${r.secs.toFixed(0)} s`);
    assert.equal(r.code, 0, `npm run code-server:install exited with ${r.code}`);
    installed = JSON.parse(r.stdout) as { cache: string; node: string; entry: string };
    assert.equal(installed.cache, cache);
    assert.ok(installed.entry.startsWith(cache + '/'), installed.entry);
    assert.ok(installed.node.startsWith(cache + '/'), installed.node);
  });

  it('runs under Node 24 and prints its version', () => {
    assert.ok(installed, 'installed');
    const node = spawnSync(installed.node, ['--version'], { encoding: 'utf8' });
    assert.match(node.stdout, /^v24\./);
    // A fresh HOME, as the harness gives it (code-server may log that it wrote a default config
    // there before the version line).
    const home = mkdtempSync(join(tmpdir(), 'rebasin-install-home-'));
    after(() => rmSync(home, { recursive: true, force: true }));
    const v = spawnSync(installed.node, [installed.entry, '--version'], { encoding: 'utf8', env: isolatedEnv(home) });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, new RegExp(`^${CODE_SERVER_VERSION.replace(/\./g, '\\.')} `, 'm'));
  });

  it('starts and serves the workbench', { timeout: 120_000 }, async () => {
    assert.ok(installed, 'installed');
    const saved = process.env.REBASIN_TEST_CACHE;
    process.env.REBASIN_TEST_CACHE = cache;
    try {
      const server = await startCodeServer({ quiet: true });
      try {
        const health = await fetch(`${server.url}/healthz`);
        assert.equal(health.status, 200);
        const page = await fetch(server.url);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /workbench/i);
      } finally {
        await server.stop();
      }
    } finally {
      if (saved === undefined) delete process.env.REBASIN_TEST_CACHE;
      else process.env.REBASIN_TEST_CACHE = saved;
    }
    const moved = adoptInstalls(cache);
    if (moved.length) console.log(`install: moved ${moved.join(', ')} into ${cacheRoot()} for the next stages`);
  });
});
