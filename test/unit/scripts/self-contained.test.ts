/**
 * The repository passes its own tests alone: a user's clone has nothing beside it, so no file the
 * tests, benchmarks, demo or scripts run may read a path outside the repository (CI used to lay a
 * copy of `shared/` beside its clone, which hid 68 tests that read `../shared/fixtures`). Fixtures
 * are copied into `test/fixtures/` with their SOURCES notes. `.ci/run` proves the same by running
 * `npm test` in a copy of the clone with nothing beside it; this test names the offending line.
 *
 * What counts as referring outside: a relative path literal ("../…") or a `join`/`resolve` of
 * `__dirname` with literal segments that resolves above the repository root; the names of the
 * folder CI lays beside the clone (`REBASIN_SHARED`, a join of a root with '..', 'shared'); absolute paths into the
 * machine's work folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const SCANNED = ['src', 'test', 'scripts', 'bench', 'webview', 'shared', '.ci'];
const SKIPPED_DIRS = new Set(['node_modules', 'fixtures', 'dist']);
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs|sh)$|^run$/;

function filesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return SKIPPED_DIRS.has(name) ? [] : filesUnder(p);
    return SOURCE.test(name) ? [p] : [];
  });
}

const inside = (p: string): boolean => {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

export interface Escape {
  line: number;
  text: string;
  why: string;
}

/** The places in `source` (the text of `file`) that refer to a path outside the repository. */
export function escapes(file: string, source: string): Escape[] {
  const dir = path.dirname(file);
  const found: Escape[] = [];
  source.split('\n').forEach((text, i) => {
    const line = i + 1;
    const add = (why: string): void => void found.push({ line, text: text.trim(), why });
    if (/REBASIN_SHARED/.test(text)) add('names REBASIN_SHARED (the shared folder beside a CI clone)');
    // join(ROOT, '..', 'shared'): the repository's own shared/ is never reached that way from its root.
    if (/['"]\.\.['"]\s*,\s*['"]shared['"]/.test(text) && !/__dirname/.test(text)) add("joins '..', 'shared' (the folder beside a CI clone)");
    if (/['"`]\/work\//.test(text)) add('an absolute path into /work');
    // Relative path literals: imports and file paths resolve against the file's folder.
    for (const m of text.matchAll(/['"`]((?:\.\.\/)+[^'"`$\s]*)['"`]/g)) {
      if (!inside(path.resolve(dir, m[1]))) add(`"${m[1]}" resolves outside the repository`);
    }
    // join/resolve(__dirname, '..', …) with literal segments only.
    for (const m of text.matchAll(/(?:join|resolve)\(\s*__dirname((?:\s*,\s*['"][^'"]*['"])+)\s*\)/g)) {
      const parts = [...m[1].matchAll(/['"]([^'"]*)['"]/g)].map((s) => s[1]);
      if (!inside(path.resolve(dir, ...parts))) add(`__dirname + ${parts.join('/')} resolves outside the repository`);
    }
  });
  return found;
}

test('no file under src, test, scripts, bench, webview, shared or .ci refers to a path outside the repository', () => {
  const files = SCANNED.flatMap((d) => filesUnder(path.join(root, d)));
  assert.ok(files.length > 100, `scanned ${files.length} files: the walk found too few`);
  const self = path.join(root, 'test', 'unit', 'scripts', 'self-contained.test.ts');
  const problems = files
    .filter((f) => f !== self)
    .flatMap((f) => escapes(f, readFileSync(f, 'utf8')).map((e) => `${path.relative(root, f)}:${e.line}: ${e.why}: ${e.text}`));
  assert.deepEqual(problems, []);
});

test('the check catches each way of reaching outside, and passes paths inside', () => {
  const f = path.join(root, 'test', 'unit', 'helpers', 'x.ts');
  const whys = (s: string): string[] => escapes(f, s).map((e) => e.why);
  assert.equal(whys(`const d = join(REPO, '..', 'shared', 'fixtures');`).length, 1);
  assert.equal(whys(`const d = process.env.REBASIN_SHARED;`).length, 1);
  assert.equal(whys(`readFileSync('/work/shared/fixtures/hf/x.json')`).length, 1);
  assert.equal(whys(`import x from '../../../../elsewhere/mod';`).length, 1);
  assert.equal(whys(`const d = path.join(__dirname, '..', '..', '..', '..', 'shared');`).length, 1);
  assert.deepEqual(whys(`import x from '../../../src/core/files';`), []);
  assert.deepEqual(whys(`const d = path.join(__dirname, '..', '..', 'fixtures', 'hf');`), []);
  assert.deepEqual(whys(`const t = '/tmp/out'; const u = 'a/../b';`), []);
});
