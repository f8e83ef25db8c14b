/**
 * The Hugging Face folders the tests use, copied into the repository (`test/fixtures/hf`, see its
 * SOURCES.md: written by `transformers`). A missing folder fails the test that needs it: these
 * tests never skip.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const HF_FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'hf');

export function hfFixturesDir(): string {
  if (!existsSync(HF_FIXTURES)) throw new Error(`Hugging Face fixtures not found at ${HF_FIXTURES}`);
  return HF_FIXTURES;
}

/** The fixture folder `name` (e.g. "gpt2-tiny"). */
export function hfFixture(name: string): string {
  const dir = path.join(hfFixturesDir(), name);
  if (!existsSync(dir)) throw new Error(`Hugging Face fixture ${dir} is missing`);
  return dir;
}
