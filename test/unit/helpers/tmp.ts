import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh folder under os.tmpdir(); `file(name)` joins a name onto it. */
export interface TmpDir {
  readonly path: string;
  file(name: string): string;
  remove(): Promise<void>;
}

/** Creates a fresh temporary folder (remove it yourself, or use `tmpDirFor`). */
export async function makeTmpDir(prefix = 'rebasin-test-'): Promise<TmpDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    path: dir,
    file: (name) => path.join(dir, name),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Anything with node:test's `after(fn)`: a test's TestContext (for a whole suite use `makeTmpDir` in `before` and remove it in `after`). */
interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** Creates a temporary folder removed when the test (or suite) `t` ends. */
export async function tmpDirFor(t: AfterHook, prefix?: string): Promise<TmpDir> {
  const dir = await makeTmpDir(prefix);
  t.after(() => dir.remove());
  return dir;
}

/** Runs `fn` with a temporary folder and removes the folder afterwards, whatever happens. */
export async function withTmpDir<T>(fn: (dir: TmpDir) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTmpDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await dir.remove();
  }
}
