import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringifyWithFloats } from '../../../shared/float32Json';
import { afterReload, persistedState, persistedTitle } from '../../../src/extension/panelRestore';
import type { AlignmentState } from '../../../webview/protocol';

function state(over: Partial<AlignmentState> = {}): AlignmentState {
  return {
    title: 'Re-Basin: b.safetensors → a.safetensors',
    a: { name: 'a.safetensors', path: '/w/a.safetensors' },
    b: { name: 'b.safetensors', path: '/w/b.safetensors' },
    method: 'weight',
    backend: 'wasm',
    seconds: 1,
    iterations: 2,
    objectiveBefore: 1,
    objectiveAfter: 2,
    groups: [],
    heatmaps: [{ name: 'P_0', size: 2, perm: [1, 0], before: new Float32Array([1, 0, 0, 1]), after: new Float32Array([0, 1, 1, 0]) }],
    ...over,
  };
}

test('the state a webview kept comes back whole, typed arrays included', () => {
  const s = state();
  const back = persistedState({ ui: { tab: 0, views: {} }, title: s.title, data: stringifyWithFloats(s) });
  assert.ok(back);
  assert.equal(back.title, s.title);
  assert.ok(back.heatmaps[0].after instanceof Float32Array);
  assert.deepEqual([...back.heatmaps[0].after], [0, 1, 1, 0]);
  assert.equal(persistedTitle({ title: s.title }), s.title);
});

test('nothing kept, not JSON, not a panel state, or files that are not checkpoints: not restored from the webview', () => {
  assert.equal(persistedState(undefined), undefined);
  assert.equal(persistedState({ ui: {} }), undefined);
  assert.equal(persistedState({ data: '{not json' }), undefined);
  assert.equal(persistedState({ data: JSON.stringify({ title: 'x' }) }), undefined);
  assert.equal(persistedState({ data: stringifyWithFloats(state({ a: { name: 'passwd', path: '/etc/passwd' } })) }), undefined);
  assert.equal(persistedTitle({ title: 3 }), undefined);
});

test('a curve still being computed at the reload is kept as far as it got and marked as interrupted', () => {
  const curve = { lambdas: [0, 0.25], naive: { loss: [1, 2], acc: [0.9, 0.5] }, barrier: { naive: 0.5 } };
  const s = afterReload(state({ curve, curveNote: 'Loss curve: 4 of 50 points…' }));
  assert.deepEqual(s.curve, curve);
  assert.equal(s.curveNote, 'Loss curve interrupted by a window reload after 2 of its λ values; the points computed are kept.');
  assert.equal(afterReload(state({ curveNote: 'Loss curve: 0 of 50 points…' })).curveNote, 'Loss curve interrupted by a window reload.');
  // A finished or cancelled curve is left as it is.
  const done = state({ curve });
  assert.equal(afterReload(done), done);
  assert.equal(afterReload(state({ curveNote: 'Loss curve cancelled.' })).curveNote, 'Loss curve cancelled.');
});
