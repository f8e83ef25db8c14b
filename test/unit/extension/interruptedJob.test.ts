import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { interruptedRun, jobOf, parseJobEntry } from '../../../src/extension/interruptedJob';
import { runRecordSchema } from '../../../src/extension/runRecord';

const T = Date.UTC(2026, 11, 7, 13, 5, 9);

test('run-making requests are noted with what they do; others are not', () => {
  assert.deepEqual(jobOf({ kind: 'align', a: '/w/a.safetensors', b: '/w/b.safetensors', method: 'activation', seed: 0, maxIter: 10 }, T, 42), {
    kind: 'align', aPath: '/w/a.safetensors', bPath: '/w/b.safetensors', method: 'activation', doing: 'aligning', startedAt: T, pid: 42,
  });
  const curve = jobOf({ kind: 'barrier', a: '/w/a.safetensors', b: '/w/b.safetensors', data: { path: '/d' }, steps: 5, align: true, perms: { P: [0] }, method: 'weight', seed: 0, maxIter: 1 }, T);
  assert.equal(curve?.kind, 'align', 'the loss curve of Align with… is part of that alignment');
  assert.match(curve?.doing ?? '', /loss curve \(the alignment had finished\)/);
  assert.equal(jobOf({ kind: 'barrier', a: '/a.safetensors', b: '/b.safetensors', data: { path: '/d' }, steps: 5, align: false, seed: 0, maxIter: 1 }, T)?.method, 'none');
  const merge = jobOf({ kind: 'merge', inputs: ['/a.safetensors', '/b.safetensors', '/c.safetensors'], out: '/m.safetensors', lambda: 0.5, align: true, seed: 0, maxIter: 1 }, T);
  assert.deepEqual([merge?.kind, merge?.method, merge?.otherPaths], ['merge', 'mergemany', ['/c.safetensors']]);
  assert.deepEqual(jobOf({ kind: 'diff', a: '/a.safetensors', b: '/b.safetensors', align: true }, T), { kind: 'diff', aPath: '/a.safetensors', bPath: '/b.safetensors', method: 'weight', doing: 'comparing', startedAt: T });
  assert.equal(jobOf({ kind: 'diff', a: '/a.safetensors', b: '/b.safetensors' }, T)?.method, 'naive');
  assert.equal(jobOf({ kind: 'diffTensor', a: '/a.safetensors', b: '/b.safetensors', tensor: 'w' }, T), undefined, 'drawing a tensor makes no run');
  assert.equal(jobOf({ kind: 'tensorStats', file: '/a.safetensors', tensor: 'w' } as never, T), undefined);
});

test('a leftover note becomes a history record that says the run was interrupted by a window reload', () => {
  const job = parseJobEntry(JSON.parse(JSON.stringify(jobOf({ kind: 'align', a: '/w/a.safetensors', b: '/w/b.safetensors', method: 'weight', seed: 0, maxIter: 10 }, T))));
  assert.ok(job);
  const run = interruptedRun(job, 'en-GB');
  assert.equal(run.note, `Interrupted by a window reload while aligning (started ${new Date(T).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })}); no result was kept.`);
  assert.equal(run.interrupted, true);
  assert.ok(!('out' in run), 'no output is claimed');
  // It is a valid stored record once the history gives it an id and a time.
  assert.ok(v.safeParse(runRecordSchema, { ...run, id: 'x', createdAt: new Date(T).toISOString(), hasPanel: false }).success);
  assert.equal(parseJobEntry({ kind: 'align' }), undefined);
});
