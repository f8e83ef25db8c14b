/**
 * Which folder holds a @tensorflow/tfjs-node package, from what a user picked: the package
 * itself, a folder with node_modules/@tensorflow/tfjs-node (an npm install, or the cache entry
 * `npm run native:build` prints), or nothing usable (one line saying what was expected).
 * No tfjs here: the extension host calls it without loading tfjs.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export const TFJS_NODE = '@tensorflow/tfjs-node';

function packageName(dir: string): string | undefined {
  try {
    const pkg: unknown = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return typeof pkg === 'object' && pkg !== null && typeof (pkg as { name?: unknown }).name === 'string' ? (pkg as { name: string }).name : undefined;
  } catch {
    return undefined;
  }
}

/** The tfjs-node package folder for `picked`; throws one line naming `picked` when there is none. */
export function tfjsNodeFolder(picked: string): string {
  const dir = path.resolve(picked);
  for (const candidate of [dir, path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node')]) {
    if (packageName(candidate) === TFJS_NODE) return candidate;
  }
  throw new Error(`${dir}: not a ${TFJS_NODE} package folder (no package.json named ${TFJS_NODE} there or in node_modules/@tensorflow/tfjs-node)`);
}
