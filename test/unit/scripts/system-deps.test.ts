// What `npm test` does about the Debian packages npm cannot install (scripts/system-deps.mjs):
// which stages need which package, and, with a fake "is it installed" probe and a recording
// apt-get, that root installs the missing ones (lists updated once) and anyone else gets one line
// with the exact command. Nothing here runs apt-get.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aptCommand,
  installSystemPackages,
  packagesFor,
  planSystemPackages,
} from '../../../scripts/system-deps.mjs';

const ALL = ['typecheck', 'build', 'unit-pure', 'unit-spawn', 'browser', 'install', 'integration', 'ui'];

describe('which stages need which Debian package', () => {
  it('typecheck and build need none', () => {
    assert.deepEqual([...packagesFor(['typecheck', 'build'], { codeServerInstalled: false })], []);
  });

  it('chromium for the stages that open a browser; libkrb5-dev only where code-server gets built', () => {
    assert.deepEqual(Object.fromEntries(packagesFor(ALL, { codeServerInstalled: false })), {
      chromium: ['unit-spawn', 'browser', 'install', 'integration', 'ui'],
      'libkrb5-dev': ['install', 'integration', 'ui'],
    });
  });

  it('with code-server cached, only the install stage (a fresh install) needs libkrb5-dev', () => {
    assert.deepEqual(Object.fromEntries(packagesFor(ALL, { codeServerInstalled: true })), {
      chromium: ['unit-spawn', 'browser', 'install', 'integration', 'ui'],
      'libkrb5-dev': ['install'],
    });
    assert.deepEqual(Object.fromEntries(packagesFor(['build', 'integration'], { codeServerInstalled: true })), {
      chromium: ['integration'],
    });
  });
});

describe('provisioning the missing packages', () => {
  const needed = packagesFor(ALL, { codeServerInstalled: false });
  const missingOnly = (...pkgs: string[]) => (pkg: string) => !pkgs.includes(pkg);

  it('does nothing when everything is there', () => {
    assert.deepEqual(planSystemPackages(needed, { probe: () => true, isRoot: false, hasApt: true }), { action: 'none' });
  });

  it('not root: stops with one line giving the exact command for what is missing', () => {
    const plan = planSystemPackages(needed, { probe: missingOnly('chromium', 'libkrb5-dev'), isRoot: false, hasApt: true });
    assert.equal(plan.action, 'stop');
    if (plan.action !== 'stop') return;
    assert.deepEqual(plan.missing, ['chromium', 'libkrb5-dev']);
    assert.doesNotMatch(plan.line, /\n/);
    assert.ok(
      plan.line.endsWith(
        'run: sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium libkrb5-dev',
      ),
      plan.line,
    );
    assert.match(plan.line, /chromium \(headless browser, for unit-spawn, browser, install, integration, ui\)/);
  });

  it('names only the missing package', () => {
    const plan = planSystemPackages(needed, { probe: missingOnly('libkrb5-dev'), isRoot: false, hasApt: true });
    assert.equal(plan.action, 'stop');
    if (plan.action !== 'stop') return;
    assert.deepEqual(plan.missing, ['libkrb5-dev']);
    assert.ok(plan.line.endsWith('--no-install-recommends libkrb5-dev'), plan.line);
  });

  it('root without apt-get (not Debian) also stops with the command', () => {
    const plan = planSystemPackages(needed, { probe: missingOnly('chromium'), isRoot: true, hasApt: false });
    assert.equal(plan.action, 'stop');
  });

  it('root: updates the package lists once, then installs the missing packages in one go', () => {
    const plan = planSystemPackages(needed, { probe: missingOnly('chromium', 'libkrb5-dev'), isRoot: true, hasApt: true });
    assert.equal(plan.action, 'install');
    if (plan.action !== 'install') return;
    const installed = new Set<string>();
    const calls: string[][] = [];
    const apt = (args: string[]) => {
      calls.push(args);
      if (args[0] === 'install') for (const p of args.slice(1)) if (!p.startsWith('-')) installed.add(p);
      return { status: 0, output: '' };
    };
    const failure = installSystemPackages(plan.missing, { probe: (p) => installed.has(p), apt });
    assert.equal(failure, null);
    assert.deepEqual(calls, [['update'], ['install', '-y', '--no-install-recommends', 'chromium', 'libkrb5-dev']]);
  });

  it('root: a failing apt-get or a package still missing afterwards is one line', () => {
    const failing = installSystemPackages(['chromium'], {
      probe: () => false,
      apt: (args) => (args[0] === 'update' ? { status: 100, output: 'E: network unreachable' } : { status: 0, output: '' }),
    });
    assert.match(failing ?? '', /^test-all: apt-get update exited with 100 \(E: network unreachable\); run: apt-get update && /);
    const ghost = installSystemPackages(['chromium'], { probe: () => false, apt: () => ({ status: 0, output: '' }) });
    assert.equal(ghost, 'test-all: chromium: installed but still not found');
  });

  it('the root command has no sudo', () => {
    assert.equal(aptCommand(['chromium'], true), 'apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium');
  });
});
