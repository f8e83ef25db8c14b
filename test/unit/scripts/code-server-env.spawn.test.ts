// The environment of code-server's child `npm install` (scripts/code-server.mjs childInstallEnv):
// nothing an outer npm put there survives, since npm reads `npm_config_*` back as its own config
// (code-server's postinstall read "node/v20" from an inherited npm_config_user_agent and refused
// to install). The full install from inside an npm script is the `install` stage
// (test/install/code-server.test.ts); this checks the environment against a real npm script's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { childInstallEnv } from '../../../scripts/code-server.mjs';

/** The environment npm gives a script of a throwaway package. */
function npmScriptEnv(): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'rebasin-npmenv-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'envprobe', private: true, scripts: { probe: 'node -e "process.stdout.write(JSON.stringify(process.env))"' } }),
  );
  const r = spawnSync('npm', ['run', '--silent', 'probe'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as NodeJS.ProcessEnv;
}

describe('child npm install environment', () => {
  it('drops every variable an outer npm script sets, keeps the rest, puts Node 24 first on PATH', () => {
    const outer = npmScriptEnv();
    assert.match(outer.npm_config_user_agent ?? '', /node\/v20\./, 'a real npm script sees the outer user agent');
    const env = childInstallEnv({ ...outer, REBASIN_MARK: 'kept' }, '/opt/node24');
    // Connection settings (cafile, registry, proxies) stay, as the outer npm had them.
    const connection = /^npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl)$/i;
    for (const k of Object.keys(env).filter((x) => connection.test(x))) assert.equal(env[k], outer[k], k);
    const npmVars = Object.keys(env).filter((k) => /^npm_/i.test(k) && !connection.test(k));
    assert.deepEqual(npmVars.sort(), [
      'npm_config_audit',
      'npm_config_dangerously_allow_all_scripts',
      'npm_config_fund',
      'npm_config_ignore_scripts',
      'npm_config_nodedir',
      'npm_config_update_notifier',
    ]);
    assert.equal(env.npm_config_nodedir, '/opt/node24');
    assert.equal(env.NODE, undefined);
    assert.equal(env.INIT_CWD, undefined);
    assert.equal(env.REBASIN_MARK, 'kept');
    assert.equal(env.HOME, outer.HOME);
    const path = (env.PATH ?? '').split(':');
    assert.equal(path[0], '/opt/node24/bin');
    assert.ok(!path.some((d) => d.endsWith('node_modules/.bin') || d.endsWith('node-gyp-bin')), env.PATH);
    for (const d of (outer.PATH ?? '').split(':').filter((x) => !x.includes('node_modules'))) assert.ok(path.includes(d), d);
  });

  it('keeps registry and proxy settings (how to reach the registry), in either case', () => {
    const env = childInstallEnv(
      { PATH: '/usr/bin', npm_config_registry: 'http://mirror.invalid/', NPM_CONFIG_HTTPS_PROXY: 'http://proxy.invalid:3128', npm_config_user_agent: 'npm/11 node/v20.0.0', npm_lifecycle_event: 'test' },
      undefined,
    );
    assert.equal(env.npm_config_registry, 'http://mirror.invalid/');
    assert.equal(env.NPM_CONFIG_HTTPS_PROXY, 'http://proxy.invalid:3128');
    assert.equal(env.npm_config_user_agent, undefined);
    assert.equal(env.npm_config_nodedir, undefined);
    assert.equal(env.PATH, '/usr/bin');
  });
});
