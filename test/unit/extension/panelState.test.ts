import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from 'valibot';
import { alignmentStateSchema } from '../../../shared/messages/alignment';
import { alignmentState, alignmentTitle, runningState } from '../../../src/extension/panelState';

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
