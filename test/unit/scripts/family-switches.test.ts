/**
 * Families are asked, not named (issue 20): outside a family's own modules no code switches on a
 * family id (`case 'gpt2'`, `=== 'llama'`, an object keyed by two family ids), and the transformer
 * building blocks that make a forward pass (`attention`, `TransformerWeights` of
 * src/engine/lm/blocks.ts) are used only by the families' LM passes, so a second forward pass for
 * an architecture cannot reappear beside the one tested against `transformers`' logits.
 * A family's modules are the files named after it (`gpt2.ts`, `resnetNet.ts`, `lm/llama.ts`) in
 * src/core/families/, src/engine/families/ and src/engine/lm/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FAMILY_IDS } from '../../../src/core/families/familyId';

const root = path.resolve(__dirname, '..', '..', '..');
const SCANNED = ['src', 'webview', 'shared'];
const FAMILY_DIRS = ['src/core/families', 'src/engine/families', 'src/engine/lm'];

/** The TypeScript files below `dir` (none when it is absent). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tsx?$/.test(f) && !f.includes('node_modules')).map((f) => path.join(dir, f));
}

/** `resnet-cifar` is written `resnetCifar` in file names. */
const fileStem = (id: string): string => id.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

/** True for a family's own module: named after a family id, in one of the family folders. */
export function isFamilyModule(rel: string, ids: readonly string[] = FAMILY_IDS): boolean {
  const dir = path.posix.dirname(rel);
  const base = path.posix.basename(rel).replace(/\.tsx?$/, '');
  return FAMILY_DIRS.includes(dir) && ids.some((id) => base.startsWith(fileStem(id)));
}

export interface Finding {
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

/** Family-name switches and forward-pass building blocks in `source` (a file outside the family modules). */
export function findings(source: string, ids: readonly string[] = FAMILY_IDS): Finding[] {
  const id = `(?:${ids.map((i) => i.replace(/[-]/g, '\\-')).join('|')})`;
  const rules: readonly [RegExp, string][] = [
    [new RegExp(`\\bcase\\s+['"\`]${id}['"\`]\\s*:`), 'a switch case on a family id'],
    [new RegExp(`[!=]==?\\s*['"\`]${id}['"\`]|['"\`]${id}['"\`]\\s*[!=]==?`), 'a comparison with a family id'],
    [new RegExp(`(?:^|[\\s{,])['"]?${id}['"]?\\s*:.*[\\s{,]['"]?${id}['"]?\\s*:`), 'an object keyed by family ids'],
    [/\bimport\b[^;]*\b(attention|TransformerWeights)\b[^;]*from\s+['"][^'"]*\/blocks['"]/, 'a forward pass built from the transformer blocks'],
    [/\bnew\s+TransformerWeights\s*\(/, 'a forward pass built from the transformer blocks'],
  ];
  const out: Finding[] = [];
  source.split('\n').forEach((text, i) => {
    // Comments may name families freely.
    const code = text.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '').replace(/\/\*.*?\*\//g, '');
    for (const [re, why] of rules) if (re.test(code)) out.push({ line: i + 1, text: text.trim(), why });
  });
  return out;
}

test('the rules catch what they are for (and let generic code be)', () => {
  assert.equal(findings("switch (config.family) {\n  case 'gpt2':\n    return 1;").length, 1);
  assert.equal(findings("const q = family === 'llama' ? 2 : 1;").length, 1);
  assert.equal(findings("if ('bert' !== config.family) throw e;").length, 1);
  assert.equal(findings("const x = { gpt2: 'a', llama: 'b' }[config.family];").length, 1);
  assert.equal(findings("import { attention, dense } from '../lm/blocks';").length, 1);
  assert.equal(findings('const w = new TransformerWeights(tensors);').length, 1);
  assert.equal(findings("const lm = lmArchitecture(config.family);\nif (config.modelType === 'qwen2') n += 1;\n// case 'gpt2': a comment").length, 0);
  assert.equal(findings("import { gelu, silu } from './blocks';").length, 0);
  assert.ok(isFamilyModule('src/engine/lm/gpt2.ts'));
  assert.ok(isFamilyModule('src/core/families/resnetCifar.ts'));
  assert.ok(isFamilyModule('src/engine/families/resnetNet.ts'));
  assert.ok(!isFamilyModule('src/engine/lm/model.ts'));
  assert.ok(!isFamilyModule('src/engine/compute/transformer.ts'));
});

test('no family-name switch or second forward pass outside the family modules', () => {
  const bad: string[] = [];
  for (const dir of SCANNED) {
    for (const file of filesUnder(path.join(root, dir))) {
      const rel = path.relative(root, file).split(path.sep).join('/');
      if (isFamilyModule(rel)) continue;
      for (const f of findings(readFileSync(file, 'utf8'))) bad.push(`${rel}:${f.line}: ${f.why}: ${f.text}`);
    }
  }
  assert.deepEqual(bad, [], `ask the family (its EngineFamily / CoreFamily capabilities) instead:\n${bad.join('\n')}`);
});
