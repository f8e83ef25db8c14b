/** The built CLI (dist/cli.js) as scripts call it, for the CLI's spawn tests. */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..', '..');
export const cliPath = path.join(root, 'dist', 'cli.js');

/** Builds dist/ (the tests run the bundle, not the sources). */
export function buildDist(): void {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}

/** Runs `rebasin ARGS`: its exit code, stdout and stderr. */
export function runCli(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
