// Folders the harness works with. tsx runs test files as CommonJS, so __dirname is defined.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The clone's root folder (where package.json is). */
export const repoRoot: string = resolve(__dirname, '..', '..');

/** Where screenshots and other test artefacts go (git-ignored). */
export const resultsDir: string = join(repoRoot, 'test-results');

/** Creates `test-results/` (and sub folders) if missing; returns the full path. */
export function resultsPath(...parts: string[]): string {
  const p = join(resultsDir, ...parts);
  mkdirSync(resolve(p, '..'), { recursive: true });
  return p;
}
