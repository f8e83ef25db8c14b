import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alignedMetadata } from '../../../../src/engine/handlers/align';

test("an aligned file keeps B's own metadata and records the alignment under rebasin.align.*", () => {
  const b = { format: 'pt', 'rebasin.trainedBy': 'rebasin train (tfjs)', 'rebasin.seed': '7', 'rebasin.epochs': '3' };
  const m = alignedMetadata(b, { method: 'weight', a: '/w/a.safetensors', seed: 2 });
  assert.equal(m['rebasin.seed'], '7', "B's training seed is not overwritten by the alignment's");
  assert.equal(m['rebasin.trainedBy'], 'rebasin train (tfjs)');
  assert.equal(m['rebasin.epochs'], '3');
  assert.equal(m.format, 'pt');
  assert.equal(m['rebasin.align.seed'], '2');
  assert.equal(m['rebasin.align.method'], 'weight');
  assert.equal(m['rebasin.align.reference'], '/w/a.safetensors');
  assert.equal(m['rebasin.tool'], 'rebasin', 'marks a file Re-Basin wrote');
  assert.ok(m['rebasin.align.version']);
  assert.equal(m['rebasin.method'], undefined);
});
