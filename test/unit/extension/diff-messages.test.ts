/**
 * The diff view's messages (shared/messages/diff.ts): the webview accepts `init` with a real diff
 * result (from src/core/diff on the fixture) and a scan; the extension accepts only `ready`,
 * `scan` and well-formed exports from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { diffCheckpoints, tensorPicture } from '../../../src/core/diff';
import { openCheckpoint } from '../../../src/core/safetensors';
import { scanCheckpoint } from '../../../src/core/scan';
import { asFromDiff } from '../../../src/extension/messageGuards';
import { MessageError, toDiff } from '../../../webview/validate';

const FIXTURE = path.join(__dirname, '..', '..', 'fixtures', 'safetensors', 'fluxml', 'non_sharded', 'model.safetensors');

test('the diff view takes a real diff result and scan; null figures stay null', async () => {
  const ck = await openCheckpoint(FIXTURE);
  try {
    const diff = await diffCheckpoints(ck, ck);
    const scan = await scanCheckpoint(ck);
    const result = { a: FIXTURE, b: FIXTURE, seconds: 0.1, ...diff };
    const rule = { extremeAbs: 1e4, extremeStdRatio: 100 };
    const m = toDiff({ type: 'init', state: { title: 't', a: { name: 'a', path: FIXTURE }, b: { name: 'b', path: FIXTURE }, result, scanA: { path: FIXTURE, seconds: 0, rule, ...scan } } });
    assert.equal(m.type, 'init');
    assert.equal(m.state.result.tensors.length, 36);
    // BOOL tensors of the fixture are all false: their cosine does not exist.
    assert.equal(m.state.result.tensors.find((t) => t.name === 'bool_3')?.cosine, null);
    assert.throws(() => toDiff({ type: 'init', state: { title: 't', a: { name: 'a', path: 'x' }, b: { name: 'b', path: 'y' }, result: { ...result, totals: { ...result.totals, l2: 'x' } } } }), MessageError);
  } finally {
    await ck.close();
  }
});

test('the diff view takes a real tensor picture and a picture error; a picture with the wrong cell count is refused', async () => {
  const ck = await openCheckpoint(FIXTURE);
  try {
    const picture = await tensorPicture(ck, ck, 'float32_357');
    const m = toDiff({ type: 'tensor', picture });
    assert.equal(m.type === 'tensor' && m.picture.heatmap.values.length, 3 * 35);
    assert.deepEqual(toDiff({ type: 'tensorError', tensor: 'x', message: 'gone' }), { type: 'tensorError', tensor: 'x', message: 'gone' });
    assert.throws(() => toDiff({ type: 'tensor', picture: { ...picture, heatmap: { ...picture.heatmap, rows: 2 } } }), /rows × cols values/);
  } finally {
    await ck.close();
  }
});

test('the extension accepts ready, scan, showTensor and exports from the diff view, nothing else', () => {
  assert.deepEqual(asFromDiff({ type: 'scan' }), { type: 'scan' });
  assert.deepEqual(asFromDiff({ type: 'showTensor', tensor: 'layers.0.weight' }), { type: 'showTensor', tensor: 'layers.0.weight' });
  assert.equal(asFromDiff({ type: 'showTensor', tensor: '' }), undefined);
  assert.deepEqual(asFromDiff({ type: 'ready' }), { type: 'ready' });
  assert.ok(asFromDiff({ type: 'exportCsv', csv: 'a,b\n', suggestedName: 'x.csv' }));
  assert.equal(asFromDiff({ type: 'exportCsv', csv: 'a', suggestedName: '../x.csv' }), undefined);
  assert.equal(asFromDiff({ type: 'exportPng', dataUrl: 'javascript:1', suggestedName: 'x.png' }), undefined);
  assert.equal(asFromDiff({ type: 'openFile', which: 'a' }), undefined);
});
