/**
 * The rules of test/unit's layout (docs/testing.md, "Where a new test goes") that
 * scripts/test-all.mjs relies on: unit test files sit in folders named after the code they test
 * (mirroring src/), and a file that starts workers or processes, itself or through a helper it
 * imports, is named `*.spawn.test.ts`: the pure ones run concurrently, and two of those at once
 * would race on dist/ (each rebuilds it) and on the two cores.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const unitDir = path.join(root, 'test', 'unit');
const AREAS = new Set(['core', 'engine', 'extension', 'cli', 'webview', 'shared', 'demo', 'scripts', 'helpers']);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Imports and uses that start a worker or a process, or rewrite dist/ (comments excluded). */
const SPAWNS: readonly RegExp[] = [
  /from ['"](node:)?child_process['"]/,
  /from ['"](node:)?worker_threads['"]/,
  /EngineClient\s*\.\s*start\(/,
  /['"]dist['"],\s*['"](worker|cli|demo)\.js/,
  /scripts['"], ['"]build\.mjs/,
];

const code = (file: string): string => readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');

/** The file's own text plus that of the test/unit modules it imports (transitively). */
function reachableCode(file: string, seen = new Set<string>()): string {
  if (seen.has(file)) return '';
  seen.add(file);
  const text = code(file);
  let all = text;
  for (const m of text.matchAll(/from ['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), m[1]) + '.ts';
    if (target.startsWith(unitDir + path.sep) && statSync(target, { throwIfNoEntry: false })?.isFile()) all += reachableCode(target, seen);
  }
  return all;
}

const testFiles = filesUnder(unitDir).filter((f) => f.endsWith('.test.ts'));

test('every unit test file sits in a folder named after a layer of the code (none at the top)', () => {
  assert.ok(testFiles.length > 50, `found only ${testFiles.length} test files`);
  const misplaced = testFiles.map((f) => path.relative(unitDir, f)).filter((rel) => !AREAS.has(rel.split(path.sep)[0]) || !rel.includes(path.sep));
  assert.deepEqual(misplaced, []);
});

test('a unit test that starts workers or processes is named *.spawn.test.ts, and only such a test', () => {
  const wrong: string[] = [];
  for (const f of testFiles) {
    const spawns = SPAWNS.some((re) => re.test(reachableCode(f)));
    if (spawns !== f.endsWith('.spawn.test.ts')) wrong.push(`${path.relative(unitDir, f)} (${spawns ? 'spawns' : 'spawns nothing'})`);
  }
  assert.deepEqual(wrong, []);
});
