import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from 'valibot';
import { alignmentStateSchema } from '../../../shared/messages/alignment';
import { alignmentState, alignmentTitle, runningState } from '../../../src/extension/panelState';
import { stringifyWithFloats, typedArrayReviver } from '../../../shared/float32Json';

test('a Hugging Face pair is titled and labelled by its folders', () => {
  assert.equal(alignmentTitle('/w/gpt2-a/model.safetensors', '/w/gpt2-b/model.safetensors'), 'Re-Basin: gpt2-b → gpt2-a');
  assert.equal(alignmentTitle('/w/x/m/model.safetensors', '/w/y/m/model.safetensors'), 'Re-Basin: y/m → x/m');
  const s = alignmentState('/w/gpt2-a/model.safetensors', '/w/gpt2-b/model.safetensors', {
    method: 'weight', seconds: 1, iterations: 2, objectiveBefore: 1, objectiveAfter: 2, perms: {}, backend: 'wasm', groups: [],
    out: '/w/gpt2-b/model.aligned.safetensors', written: true,
  });
  assert.deepEqual([s.a.name, s.b.name, s.out?.name], ['gpt2-a', 'gpt2-b', 'gpt2-b/model.aligned.safetensors']);
  const none = alignmentState('/w/a.safetensors', '/w/b.safetensors', { method: 'weight', seconds: 1, iterations: 2, objectiveBefore: 1, objectiveAfter: 2, perms: {}, backend: 'wasm', groups: [], written: false });
  assert.equal(none.out, undefined, 'nothing written: no output to link');
});

test('a panel re-used by a new run of its pair shows "running" and none of the earlier results; the panel accepts it', () => {
  const s = runningState('/w/a.safetensors', '/w/b.safetensors', 'weight', 'aligning b.safetensors to a.safetensors');
  assert.equal(s.title, alignmentTitle('/w/a.safetensors', '/w/b.safetensors'), 'finds the open panel of the pair');
  assert.equal(s.method, 'weight (running)');
  assert.deepEqual([s.heatmaps.length, s.groups.length, s.curve, s.out], [0, 0, undefined, undefined]);
  assert.match(s.curveNote ?? '', /^Running: aligning b\.safetensors to a\.safetensors…$/);
  assert.ok(v.safeParse(alignmentStateSchema, s).success, 'valid panel state');
  const failed = runningState('/w/a.safetensors', '/w/b.safetensors', 'weight', 'b.safetensors: disk full', 'failed');
  assert.equal(failed.method, 'weight (failed)');
  assert.match(failed.curveNote ?? '', /^This run failed: b\.safetensors: disk full\./);
  assert.ok(v.safeParse(alignmentStateSchema, failed).success);
});

test('an orthogonal alignment\'s pictures of |R| reach the panel state, survive the stored-run codec, and a wrong size is refused', () => {
  const picture = (side: number, block: number) => ({ side, block, values: new Float32Array(side * side).fill(0.5) });
  const map = (size: number, block: number) => ({ size, rowMaxMean: 0.5, objectiveBefore: 1, objectiveAfter: 2, picture: picture(Math.ceil(size / block), block) });
  const ok = { maxAbsDiff: 0, relDiff: 0, ok: true, batch: 'data' as const };
  const s = alignmentState('/w/a', '/w/b', {
    method: 'activation', symmetry: 'orthogonal', seconds: 1, iterations: 1, objectiveBefore: 1, objectiveAfter: 2, perms: {}, backend: 'wasm', groups: [],
    orthogonal: { residual: map(768, 3), qk: [[map(64, 1)]], vo: [[map(64, 1)]], untiedHead: false, referenceEquivalence: ok },
  });
  const maps = s.orthogonal?.maps ?? [];
  assert.deepEqual(maps.map((m) => [m.name, m.picture?.side, m.picture?.block]), [['residual stream', 256, 3], ['layer 0 · QK · head 0', 64, 1], ['layer 0 · VO · head 0', 64, 1]]);
  // As stored in the run history and posted to the webview: Float32Arrays as {$f32: base64}.
  const stored = v.safeParse(alignmentStateSchema, JSON.parse(stringifyWithFloats(s), typedArrayReviver));
  assert.equal(stored.success, true);
  assert.deepEqual([...(stored.output as typeof s).orthogonal!.maps[0].picture!.values.subarray(0, 3)], [0.5, 0.5, 0.5]);
  // A picture whose side does not match its map's size in its blocks, or whose values are short, is refused.
  const wrongSide = { ...s, orthogonal: { ...s.orthogonal!, maps: [{ ...maps[0], picture: picture(255, 3) }] } };
  assert.match(v.safeParse(alignmentStateSchema, wrongSide).issues?.[0].message ?? '', /picture of residual stream: side 255 does not match size 768 in blocks of 3/);
  const short = { ...s, orthogonal: { ...s.orthogonal!, maps: [{ ...maps[1], picture: { side: 64, block: 1, values: new Float32Array(10) } }] } };
  assert.match(v.safeParse(alignmentStateSchema, short).issues?.[0].message ?? '', /side² = 4096 values/);
});
