/**
 * The webviews' message schemas (shared/messages/): what a webview accepts from the extension
 * (webview/validate.ts), what the extension accepts from a webview (messageGuards.ts), and the
 * run history's stored records and panels (runRecord.ts). The same curve and histogram rules as
 * the worker boundary (engine-protocol.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stringifyWithFloats } from '../../../shared/float32Json';
import { asFromAlignment, asFromBarriers, asFromInspector } from '../../../src/extension/messageGuards';
import { decodeDiffPanel, decodePanel, encodePanel, parseRunList } from '../../../src/extension/runRecord';
import type { AlignmentState, DiffState } from '../../../webview/protocol';
import { alignmentState, attentionLayer, MessageError, toAlignment, toBarriers, toInspector } from '../../../webview/validate';
import { validateResult } from '../../../src/engine/validate';

const curve = { lambdas: [0, 0.5, 1], naive: { loss: [1, 2, 1], acc: [0.9, 0.5, 0.9] }, barrier: { naive: 1 } };
const heatmap = { name: 'P_0', size: 2, perm: [1, 0], before: new Float32Array([1, 0, 0, 1]), after: new Float32Array([0, 1, 1, 0]) };
const state: AlignmentState = {
  title: 'b → a', a: { name: 'a', path: '/a' }, b: { name: 'b', path: '/b' }, method: 'weight', backend: 'wasm', seconds: 1,
  iterations: 2, objectiveBefore: 1, objectiveAfter: 2, groups: [{ name: 'P_0', size: 2, moved: 2, objectiveBefore: 1, objectiveAfter: 2 }],
  heatmaps: [heatmap], curve,
};
const stats = { tensor: 't', count: 3, min: 0, max: 1, mean: 0.5, std: 0.1, nanCount: 0, infCount: 0, histogram: { edges: [0, 0.5, 1], counts: [1, 2] } };

function rejected(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof MessageError && e.kind === 'InvalidMessage' && pattern.test(e.message));
}

describe('messages to the webviews', () => {
  it('accepts each view\'s messages and drops fields it does not know', () => {
    const init = toAlignment({ type: 'init', state: { ...state, extra: 1 } });
    assert.equal(init.type, 'init');
    assert.ok(init.type === 'init' && !('extra' in init.state));
    assert.deepEqual(toAlignment({ type: 'curve', curveNote: 'Loss curve cancelled.' }), { type: 'curve', curveNote: 'Loss curve cancelled.' });
    toBarriers({ type: 'update', state: { runs: [{ id: 'r', kind: 'barrier', a: 'a', b: 'b', method: 'weight', createdAt: '2026-01-01', backend: 'wasm', seconds: 1, curve }] } });
    toInspector({ type: 'stats', tensor: 't', stats });
    toInspector({ type: 'stats', tensor: 't', stats: { ...stats, count: 0, histogram: { edges: [], counts: [] } } });
  });

  it('takes heatmap matrices as Float32Array, number[], other typed arrays or {$f32}, and hands out Float32Array', () => {
    const forms = [heatmap.before, [1, 0, 0, 1], new Float64Array([1, 0, 0, 1]), JSON.parse(stringifyWithFloats(heatmap.before)) as unknown];
    for (const before of forms) {
      const s = alignmentState({ ...state, heatmaps: [{ ...heatmap, before }] });
      assert.ok(s.heatmaps[0].before instanceof Float32Array);
      assert.deepEqual(Array.from(s.heatmaps[0].before), [1, 0, 0, 1]);
    }
    rejected(() => alignmentState({ ...state, heatmaps: [{ ...heatmap, before: { $f32: 'AAA=' } }] }), /`state\.heatmaps\[0\]\.before` must be a Float32Array, an array of numbers or \{\$f32: base64\}/);
    rejected(() => alignmentState({ ...state, heatmaps: [{ ...heatmap, before: [1, 0, 0] }] }), /size² = 4 values/);
    rejected(() => alignmentState({ ...state, heatmaps: [{ ...heatmap, perm: [0] }] }), /`state\.heatmaps\[0\]\.perm` has 1 entries, expected 2/);
    rejected(() => alignmentState({ ...state, heatmaps: [{ ...heatmap, originalSize: 1 }] }), /`state\.heatmaps\[0\]\.originalSize` must be >= size/);
  });

  it('applies the worker boundary\'s rules: one accuracy per λ, one more histogram edge than counts', () => {
    // Before, the webview accepted an empty `acc` and a histogram of two edges and no counts.
    rejected(() => toAlignment({ type: 'curve', curve: { ...curve, naive: { loss: [1, 2, 1], acc: [] } } }), /`message\.curve` `naive\.acc` must have one value per lambda \(3\), has 0/);
    rejected(() => toAlignment({ type: 'update', state: { ...state, curve: { ...curve, aligned: { loss: [1], acc: [1] } } } }), /`state\.curve` `aligned\.loss` must have one value per lambda/);
    rejected(() => toInspector({ type: 'stats', tensor: 't', stats: { ...stats, histogram: { edges: [0, 1], counts: [] } } }), /`message\.stats` histogram must have one more edge than counts/);
  });

  it('names the field and the rule of an invalid message', () => {
    rejected(() => toAlignment('not an object'), /^message: `message` must be an object$/);
    rejected(() => toAlignment({ type: 'bogus' }), /^message: `message\.type` "bogus" is not a message of the alignment view$/);
    rejected(() => toBarriers({ type: 'init' }), /^message: `state` must be an object$/);
    rejected(() => toAlignment({ type: 'init', state: { ...state, a: undefined } }), /^message: `state\.a` must be an object$/);
    rejected(() => toInspector({ type: 'statsProgress', tensor: 't', fraction: 2 }), /`message\.fraction` must be between 0 and 1/);
  });
});

describe('attention layers (panel, inspector, align result)', () => {
  const layer = {
    layer: 'model.layers.0', label: 'layer 0', heads: 4, kvGroups: 2, headDim: 8, outer: 'P_model.layers.0.kv', groupHeads: 'P_model.layers.0.q',
    inner: [{ perm: 'P_model.layers.0.vo', label: 'v/o' }], fixedDims: true, shape: '2 KV groups × 2 query heads × 8 dims',
    details: ['v/o dims permute within each KV group', 'q/k dims fixed (RoPE)'], summary: 'layer 0 attention: …',
  };

  it('are taken as sent, and a broken field is named in one line', () => {
    assert.deepEqual(attentionLayer(JSON.parse(JSON.stringify(layer)), 'state.attention[0]'), layer);
    const { headDim: _dropped, ...broken } = layer;
    rejected(() => attentionLayer(broken, 'state.attention[0]'), /^message: `state\.attention\[0\]\.headDim` must be an integer >= 1$/);
    assert.deepEqual(alignmentState({ ...state, attention: [layer] }).attention, [layer]);
    rejected(() => alignmentState({ ...state, attention: [{ ...layer, inner: 'qk' }] }), /`state\.attention\[0\]\.inner` must be an array/);
    const architecture = { family: 'llama', perms: { P: 8 }, symmetryLog10: 4.6, blocks: { 'P_model.layers.0.vo': 2 }, attention: [layer] };
    const init = toInspector({ type: 'init', state: { path: '/m', format: 'safetensors', metadata: {}, tensors: [], totalParams: 0, totalBytes: 0, architecture } });
    assert.ok(init.type === 'init' && init.state.architecture?.attention?.[0].heads === 4);
    const align = { method: 'weight', seconds: 1, iterations: 1, objectiveBefore: 0, objectiveAfter: 1, perms: { P: [0] }, backend: 'cpu', groups: [] };
    validateResult('align', { ...align, attention: [layer] });
    assert.throws(() => validateResult('align', { ...align, attention: [{ ...layer, heads: 0 }] }), (e: unknown) => e instanceof Error && /^invalid align result field `attention\[0\]`: field `heads` must be an integer >= 1$/.test(e.message));
  });
});

describe('messages from the webviews', () => {
  it('keeps well-formed messages and drops the rest', () => {
    assert.deepEqual(asFromAlignment({ type: 'ready' }), { type: 'ready' });
    assert.deepEqual(asFromAlignment({ type: 'exportCsv', csv: 'a,b', suggestedName: 'groups.csv', extra: 1 }), { type: 'exportCsv', csv: 'a,b', suggestedName: 'groups.csv' });
    assert.ok(asFromAlignment({ type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', suggestedName: 'h.png' }));
    assert.deepEqual(asFromAlignment({ type: 'openFile', which: 'out' }), { type: 'openFile', which: 'out' });
    assert.deepEqual(asFromAlignment({ type: 'openFile', which: 'aFolded' }), { type: 'openFile', which: 'aFolded' });
    assert.deepEqual(asFromBarriers({ type: 'deleteRun', id: 'abc' }), { type: 'deleteRun', id: 'abc' });
    assert.deepEqual(asFromInspector({ type: 'cancelStats', tensor: 'w' }), { type: 'cancelStats', tensor: 'w' });
    for (const bad of [
      null, 'ready', { type: 'shout' },
      { type: 'exportCsv', csv: 'x', suggestedName: '../../etc/passwd' },
      { type: 'exportCsv', csv: 'x', suggestedName: 'a\u0000b' },
      { type: 'exportCsv', csv: 'x', suggestedName: '..' },
      { type: 'exportPng', dataUrl: 'data:text/html;base64,AAAA', suggestedName: 'h.png' },
      { type: 'openFile', which: '/etc/passwd' },
    ]) assert.equal(asFromAlignment(bad), undefined, JSON.stringify(bad));
    assert.equal(asFromBarriers({ type: 'openRun', id: 'x'.repeat(101) }), undefined);
    assert.equal(asFromBarriers({ type: 'openRun', id: '' }), undefined);
    assert.equal(asFromInspector({ type: 'requestStats', tensor: 7 }), undefined);
  });
});

describe('run history records', () => {
  const run = { id: 'r1', kind: 'align', a: 'a', b: 'b', method: 'weight', createdAt: '2026-01-01T00:00:00Z', backend: 'wasm', seconds: 1, aPath: '/a', bPath: '/b', hasPanel: true };

  it('keeps the well-formed runs of a list and drops the others', () => {
    const list = parseRunList({ version: 1, runs: [run, { ...run, id: 'r2', kind: 'nope' }, { ...run, id: 'r3', seconds: 'fast' }, { ...run, id: 'r4', curve }, 'x'] });
    assert.deepEqual(list.map((r) => r.id), ['r1', 'r4']);
    assert.deepEqual(parseRunList({ runs: 'not a list' }), []);
    assert.deepEqual(parseRunList(null), []);
  });

  it('stores panels with the {$f32} codec and reads back the same state; anything else is refused', () => {
    const bytes = encodePanel(state);
    const text = new TextDecoder().decode(bytes);
    assert.match(text, /"\$f32":"/);
    const back = decodePanel(bytes);
    assert.ok(back.heatmaps[0].before instanceof Float32Array);
    assert.deepEqual(Array.from(back.heatmaps[0].after), [0, 1, 1, 0]);
    assert.deepEqual(back.curve, curve);
    // The second codec ({f32}) is gone: a panel in that form is not a panel state.
    const old = text.replace(/"\$f32"/g, '"f32"');
    assert.throws(() => decodePanel(new TextEncoder().encode(old)));
  });

  it('keeps diff runs with their relative change (null when ||A|| is 0) and stores the diff view\'s state', () => {
    const diffRun = { ...run, id: 'd1', kind: 'diff', method: 'weight', change: { naive: 1.37, aligned: 0.36 } };
    const list = parseRunList({ version: 1, runs: [diffRun, { ...diffRun, id: 'd2', method: 'naive', change: { naive: null } }, { ...diffRun, id: 'd3', change: { naive: 'big' } }, { ...diffRun, id: 'd4', kind: 'compare' }] });
    assert.deepEqual(list.map((r) => [r.id, r.kind, r.change]), [['d1', 'diff', { naive: 1.37, aligned: 0.36 }], ['d2', 'diff', { naive: null }]]);
    const fig = { l2: 1, relative: 0.5, cosine: null, maxAbs: 0.25, nonFinite: 0 };
    const diffState: DiffState = {
      title: 'a vs b (aligned)', a: { name: 'a', path: '/a' }, b: { name: 'b', path: '/b' }, model: '/m/config.json',
      result: {
        a: '/a', b: '/b', seconds: 0.1, tensors: [{ name: 'w', shape: [2, 2], dtype: 'F32', ...fig }], layers: [{ name: 'w', tensors: 1, ...fig }], totals: { name: 'total', tensors: 1, ...fig },
        mismatches: [], onlyInA: [], onlyInB: ['x'], skipped: [],
        aligned: { method: 'weight', tensors: [{ name: 'w', shape: [2, 2], dtype: 'F32', ...fig }], layers: [{ name: 'w', tensors: 1, ...fig }], totals: { name: 'total', tensors: 1, ...fig }, permutations: [{ name: 'P_0', size: 2, moved: 2 }], perms: { P_0: [1, 0] } },
      },
    };
    assert.deepEqual(decodeDiffPanel(encodePanel(diffState)), diffState);
    // An alignment panel is not a diff view's state, nor the other way round.
    assert.throws(() => decodeDiffPanel(encodePanel(state)));
    assert.throws(() => decodePanel(encodePanel(diffState)));
  });
});
