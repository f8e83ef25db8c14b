/**
 * The Hugging Face folders in the shared fixtures (`../shared/fixtures/hf` from the repository
 * root: CI lays a copy of shared/ beside the clone). `REBASIN_SHARED` may name the shared folder
 * instead (a worktree not beside it). A missing folder fails the test that needs it, with the
 * paths tried: these tests never skip.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const REPO = path.join(__dirname, '..', '..', '..');

export function hfFixturesDir(): string {
  const tried = [process.env.REBASIN_SHARED, path.join(REPO, '..', 'shared')].filter((d): d is string => !!d).map((d) => path.join(d, 'fixtures', 'hf'));
  const found = tried.find((d) => existsSync(d));
  if (!found) throw new Error(`Hugging Face fixtures not found (tried ${tried.join(', ')}): put a copy of shared/ beside the repository or set REBASIN_SHARED`);
  return found;
}

/** The fixture folder `name` (e.g. "gpt2-tiny"). */
export function hfFixture(name: string): string {
  const dir = path.join(hfFixturesDir(), name);
  if (!existsSync(dir)) throw new Error(`Hugging Face fixture ${dir} is missing`);
  return dir;
}
