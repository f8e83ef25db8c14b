// The Debian packages `npm test` needs and npm cannot install: which stage needs which, whether
// they are present, and installing the missing ones (as root) or naming the exact command (not
// root). Used by scripts/test-all.mjs before the first stage; pure but for `probe` and `runApt`,
// which the unit test replaces.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Each package: what it is for, the stages that need it, and how to see that it is there (by the
 * file the tests use, so a browser set with REBASIN_CHROMIUM or headers from another distribution
 * count too).
 */
export const SYSTEM_PACKAGES = {
  chromium: {
    why: 'headless browser',
    // unit-spawn: the demo test screenshots curve.png; browser: the webviews; install (the
    // installed .vsix), integration and ui: the workbench served by code-server.
    stages: ['unit-spawn', 'browser', 'install', 'integration', 'ui'],
    stagesUntilCodeServerInstalled: [],
    present: (env = process.env) =>
      existsSync('/usr/bin/chromium') || Boolean(env.REBASIN_CHROMIUM && existsSync(env.REBASIN_CHROMIUM)),
  },
  'libkrb5-dev': {
    why: "gssapi headers for code-server's kerberos module",
    // Built only while code-server installs: always in the install stage (a fresh install), in
    // integration and ui only when code-server is not cached yet.
    stages: ['install'],
    stagesUntilCodeServerInstalled: ['integration', 'ui'],
    present: () => existsSync('/usr/include/gssapi/gssapi.h'),
  },
};

/**
 * The packages the chosen stages need, each with the stages that need it.
 * @param {readonly string[]} stages
 * @param {{ codeServerInstalled: boolean }} state
 * @returns {Map<string, string[]>}
 */
export function packagesFor(stages, { codeServerInstalled }) {
  const out = new Map();
  for (const [pkg, spec] of Object.entries(SYSTEM_PACKAGES)) {
    const users = stages.filter(
      (s) => spec.stages.includes(s) || (!codeServerInstalled && spec.stagesUntilCodeServerInstalled.includes(s)),
    );
    if (users.length) out.set(pkg, users);
  }
  return out;
}

/** The command that installs `pkgs` (with sudo unless root). */
export function aptCommand(pkgs, isRoot) {
  const sudo = isRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/**
 * What to do about `needed`: nothing, install the missing packages (root with apt-get), or stop
 * with one line giving the command to run.
 * @param {Map<string, string[]>} needed
 * @param {{ probe: (pkg: string) => boolean, isRoot: boolean, hasApt: boolean }} machine
 * @returns {{ action: 'none' } | { action: 'install', missing: string[], line: string } | { action: 'stop', missing: string[], line: string }}
 */
export function planSystemPackages(needed, { probe, isRoot, hasApt }) {
  const missing = [...needed.keys()].filter((pkg) => !probe(pkg));
  if (missing.length === 0) return { action: 'none' };
  const forWhat = missing.map((p) => `${p} (${SYSTEM_PACKAGES[p].why}, for ${needed.get(p).join(', ')})`).join(', ');
  if (isRoot && hasApt) {
    return { action: 'install', missing, line: `test-all: installing Debian packages ${forWhat}` };
  }
  return {
    action: 'stop',
    missing,
    line: `test-all: missing Debian packages ${forWhat}; run: ${aptCommand(missing, isRoot)}`,
  };
}

/**
 * Runs apt-get (noninteractive, quiet); returns its exit status and the tail of its output.
 * @param {string[]} args
 * @returns {{ status: number, output: string }}
 */
export function runApt(args) {
  const r = spawnSync('apt-get', ['-qq', ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim();
  return { status: r.status ?? 1, output: output.split('\n').slice(-5).join(' | ') };
}

/**
 * Installs `missing` with apt-get: the package lists are updated once, then one install.
 * Returns null when every package is present afterwards, else one line saying what failed.
 * @param {string[]} missing
 * @param {{ probe: (pkg: string) => boolean, apt?: (args: string[]) => { status: number, output: string } }} deps
 * @returns {string | null}
 */
export function installSystemPackages(missing, { probe, apt = runApt }) {
  const update = apt(['update']);
  if (update.status !== 0) {
    return `test-all: apt-get update exited with ${update.status} (${update.output}); run: ${aptCommand(missing, true)}`;
  }
  const install = apt(['install', '-y', '--no-install-recommends', ...missing]);
  if (install.status !== 0) {
    return `test-all: apt-get install ${missing.join(' ')} exited with ${install.status} (${install.output})`;
  }
  const still = missing.filter((p) => !probe(p));
  if (still.length) return `test-all: ${still.join(', ')}: installed but still not found`;
  return null;
}

/** True when this machine has apt-get on PATH. */
export function hasAptGet() {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(`${d}/apt-get`));
}

/** The real probe: the file the tests use is there. */
export function probeInstalled(pkg) {
  return SYSTEM_PACKAGES[pkg]?.present() ?? false;
}
