/**
 * The sentences about written files come from the engine's result: a result that wrote nothing
 * never reads "wrote", and every other module of src/extension leaves such sentences to
 * src/extension/outcomeText.ts (checked on the source's string literals).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import type { AlignResult, MergeResult } from '../../../src/engine/protocol';
import { alignLogLine, alignSummary, alignWrite, cancelledText, curveStartText, keptNote, mergeSummary, notWrittenNote } from '../../../src/extension/outcomeText';

const failed = {
  maxAbsDiff: 17.672176361083984,
  relDiff: 0.5815096779052544,
  ok: false,
  batch: 'random' as const,
  message: 'pi(B) computes a different function than B (largest logit difference 17.7, 0.582 of the largest logit): the permutation spec does not match the architecture',
};

function result(over: Partial<AlignResult>): AlignResult {
  return { method: 'weight', seconds: 0.3, iterations: 2, objectiveBefore: 428.63, objectiveAfter: 1351.42, perms: {}, backend: 'wasm', groups: [], ...over };
}

test('an engine result with written: false is reported as nothing written, with the failed check and by how much', () => {
  const r = result({ written: false, equivalence: failed });
  const w = alignWrite(r, '/w/gpt2-b/model.aligned.safetensors');
  assert.equal(w.written, false);
  const s = alignSummary({ a: 'gpt2-a', b: 'gpt2-b' }, 10, w, 'none');
  assert.equal(s.warning, true);
  assert.match(s.text, /nothing was written/);
  assert.match(s.text, /the equivalence check failed on a seeded random batch: π\(B\) computes a different function than B \(largest logit difference 17\.7, 0\.582 of the largest logit\)/);
  // Without the engine's words, the numbers are said here.
  const bare = alignWrite(result({ written: false, equivalence: { ...failed, message: undefined } }), '/w/x');
  assert.match(bare.written ? '' : bare.reason, /largest logit difference 17\.672, 0\.58151 of the largest logit/);
  assert.match(s.text, /Write anyway/);
  assert.match(s.text, /--keep-on-mismatch/);
  assert.doesNotMatch(s.text, /\bwrote\b/);
  assert.doesNotMatch(alignLogLine('align', r, w), /\bwrote\b/);
  assert.match(notWrittenNote(w as Extract<typeof w, { written: false }>), /^Nothing written: the equivalence check failed/);
});

test('the output is named as written only when the engine says so and names it', () => {
  assert.equal(alignWrite(result({}), '/w/b.aligned.safetensors').written, false, 'no out in the result: nothing written');
  assert.equal(alignWrite(result({ out: '/w/b.aligned.safetensors', written: false }), '/w/b.aligned.safetensors').written, false);
  const kept = alignWrite(result({ out: '/w/b.aligned.safetensors', written: true, equivalence: failed }), '/w/b.aligned.safetensors');
  const keptText = alignSummary({ a: 'a', b: 'b' }, 3, kept, 'none');
  assert.equal(keptText.warning, true, 'kept although the check failed: a warning that says so');
  assert.match(keptText.text, /^Re-Basin: wrote b\.aligned\.safetensors as asked, although the equivalence check failed/);
  assert.match(kept.written ? keptNote(kept) ?? '' : '', /^Written as asked although the equivalence check failed/);
  const w = alignWrite(result({ out: '/w/gpt2-b/model.aligned.safetensors', written: true, equivalence: { ...failed, ok: true } }), '/w/other');
  assert.deepEqual(w, { written: true, out: '/w/gpt2-b/model.aligned.safetensors' });
  assert.equal(curveStartText(w as Extract<typeof w, { written: true }>), 'gpt2-b/model.aligned.safetensors written; computing the loss curve');
  const done = alignSummary({ a: 'gpt2-a', b: 'gpt2-b' }, 12, w, 'done');
  assert.equal(done.text, 'Re-Basin: aligned gpt2-b to gpt2-a (12 units moved) and wrote gpt2-b/model.aligned.safetensors.');
  assert.equal(alignSummary({ a: 'a', b: 'b' }, 0, w, { failed: 'no data' }).warning, true);
  assert.match(alignLogLine('align', result({}), w), /; wrote \/w\/gpt2-b\/model\.aligned\.safetensors$/);
});

test('cancel and merge sentences', () => {
  assert.equal(cancelledText('alignment'), 'alignment cancelled; nothing was written');
  assert.equal(cancelledText('alignment', '/w/m/model.aligned.safetensors'), 'alignment cancelled after m/model.aligned.safetensors was written');
  const merged: MergeResult = { out: '/w/gpt2-a-merged', inputs: ['/w/a', '/w/b', '/w/c'], lambda: 1 / 3, aligned: true, method: 'mergemany', seconds: 1, backend: 'wasm' };
  assert.equal(mergeSummary(merged), 'Re-Basin: merged 3 checkpoints (MergeMany, λ=0.33) and wrote gpt2-a-merged.');
});

/** Text of every string literal and template piece in a TypeScript file. */
function stringLiterals(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) out.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

test('no module of src/extension but outcomeText.ts says "wrote" or "written" in a string', () => {
  const dir = path.join(__dirname, '..', '..', '..', 'src', 'extension');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('outcomeText.ts') && files.includes('alignCommand.ts'));
  const offending = files
    .filter((f) => f !== 'outcomeText.ts')
    .flatMap((f) => stringLiterals(path.join(dir, f)).filter((t) => /\b(wrote|written)\b/i.test(t)).map((t) => `${f}: ${JSON.stringify(t)}`));
  assert.deepEqual(offending, []);
  // The scan itself sees the outcome module's sentences.
  assert.ok(stringLiterals(path.join(dir, 'outcomeText.ts')).some((t) => /\bwrote\b/.test(t)));
});
