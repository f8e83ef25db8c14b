import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassThrough } from 'node:stream';
import { ProgressClock, formatProgress, formatTimeLeft, jobFractions, permutationWords, progressWords, secondsLeftAtRate } from '../../../src/core/progressText';
import { progressLine } from '../../../src/cli/progress';

test('words: the message when given, else the stage (capitalised) and the sweep', () => {
  assert.equal(progressWords({ stage: 'weight-matching', message: 'Weight matching: sweep 3, 12 of 24 permutations' }), 'Weight matching: sweep 3, 12 of 24 permutations');
  assert.equal(progressWords({ stage: 'loading' }), 'Loading');
  assert.equal(progressWords({ stage: 'weight matching', iteration: 2 }), 'Weight matching: sweep 2');
  assert.equal(progressWords({ stage: '', message: '  ' }), 'Working');
});

test('time left: rounded so it does not flicker', () => {
  assert.equal(formatTimeLeft(4), 'a few seconds left');
  assert.equal(formatTimeLeft(21), 'about 25 s left');
  assert.equal(formatTimeLeft(89), 'about 1 min left');
  assert.equal(formatTimeLeft(14 * 60 + 20), 'about 14 min left');
  assert.equal(formatTimeLeft(3600 + 20 * 60), 'about 1 h 20 min left');
  assert.equal(formatTimeLeft(2 * 3600), 'about 2 h left');
});

test('clock: percentage, then an estimate from the average rate once 3 s and 3% are done', () => {
  let t = 0;
  const clock = new ProgressClock(() => t);
  assert.deepEqual(clock.view({ stage: 's', message: 'Loss curve: 0 of 50 points', fraction: 0 }), { words: 'Loss curve: 0 of 50 points', percent: 0 });
  t = 1000;
  assert.equal(clock.view({ stage: 's', fraction: 0.1 }).secondsLeft, undefined, 'too early for an estimate');
  t = 10_000;
  const v = clock.view({ stage: 's', message: 'Loss curve: 14 of 50 points', fraction: 0.28 });
  assert.equal(v.percent, 28);
  // 10 s for 28%: 72% more takes about 25.7 s.
  assert.ok(v.secondsLeft !== undefined && Math.abs(v.secondsLeft - (10 * 0.72) / 0.28) < 1e-9);
  assert.equal(formatProgress(v), 'Loss curve: 14 of 50 points (28%, about 30 s left)');
  // A small step back (a noisy producer) never lowers the percentage.
  t = 11_000;
  assert.equal(clock.view({ stage: 's', fraction: 0.27 }).percent, 28);
  // No fraction: words only.
  assert.equal(formatProgress(clock.view({ stage: 'writing', message: 'Writing b.aligned.safetensors' })), 'Writing b.aligned.safetensors');
  // Fractions outside [0, 1] are clamped; done means no estimate.
  assert.deepEqual(clock.view({ stage: 's', fraction: 1.5 }), { words: 'S', percent: 100 });
});

test('clock: a fraction that falls back (a new request) restarts the estimate', () => {
  let t = 0;
  const clock = new ProgressClock(() => t);
  clock.view({ stage: 'a', fraction: 0 });
  t = 20_000;
  clock.view({ stage: 'a', fraction: 0.9 });
  t = 21_000;
  const v = clock.view({ stage: 'b', fraction: 0.1 });
  assert.equal(v.percent, 10);
  assert.equal(v.secondsLeft, undefined, 'the new phase has no rate yet');
  t = 25_000;
  const w = clock.view({ stage: 'b', fraction: 0.5 });
  // 4 s for 40 points of the new phase: 50 points more take 5 s.
  assert.ok(w.secondsLeft !== undefined && Math.abs(w.secondsLeft - 5) < 1e-9);
});

test('CLI progress line (not a terminal): words, percentage and time left, at most one line a second', () => {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let text = '';
  (stream as unknown as PassThrough).on('data', (d: Buffer) => (text += d.toString()));
  let t = 0;
  const line = progressLine('barrier', stream, false, () => t);
  line.update({ stage: 'evaluate', message: 'Loss curve: 0 of 50 points', fraction: 0 });
  t = 500;
  line.update({ stage: 'evaluate', message: 'Loss curve: 1 of 50 points', fraction: 0.02 });
  t = 10_000;
  line.update({ stage: 'evaluate', message: 'Loss curve: 25 of 50 points', fraction: 0.5 });
  line.done();
  const lines = text.trim().split('\n');
  assert.deepEqual(lines, [
    'barrier: Loss curve: 0 of 50 points (0%) [0.0s]',
    'barrier: Loss curve: 25 of 50 points (50%, about 10 s left) [10.0s]',
    'barrier: done (10.0s)',
  ]);
});

test('time left at the measured rate: one estimate for every job, none too early or when done', () => {
  // 30 s for 25%: 75% more takes 90 s.
  assert.equal(secondsLeftAtRate(30_000, 0.25), 90);
  // From where the phase started: 20 s for 0.5 → 0.75, 0.25 more takes 20 s.
  assert.equal(secondsLeftAtRate(20_000, 0.75, 0.5), 20);
  assert.equal(secondsLeftAtRate(2_000, 0.5), undefined, 'under 3 s');
  assert.equal(secondsLeftAtRate(60_000, 0.01), undefined, 'under 3% done');
  assert.equal(secondsLeftAtRate(60_000, 1), undefined, 'done');
  // An earlier step's estimate says it is that step's.
  assert.equal(formatProgress({ words: 'Activation matching: batch 3 of 40', percent: 12, secondsLeft: 70 }, 'for this step'), 'Activation matching: batch 3 of 40 (12%, about 1 min left for this step)');
  assert.equal(formatProgress({ words: 'Writing', percent: 12 }, 'for this step'), 'Writing (12%)');
});

test('job fractions: each stage fills its share of the whole job, in order, never backwards', () => {
  const whole = jobFractions([[['loading'], 0.2], [['weight-matching', 'activations'], 0.6], [['writing'], 0.2]]);
  const f = (stage: string, fraction?: number) => whole({ stage, ...(fraction !== undefined ? { fraction } : {}) }).fraction;
  assert.equal(f('loading', 0), 0);
  assert.equal(f('loading', 1), 0.2);
  // Matching starts at its own 0: the bar stays at 20% instead of falling back, then moves on.
  assert.equal(f('activations', 0), 0.2);
  assert.ok(Math.abs(f('activations', 0.5)! - 0.5) < 1e-12);
  // A stage not listed (or a stage without a fraction) keeps what was reached; an earlier stage cannot pull it back.
  assert.ok(Math.abs(f('equivalence')! - 0.5) < 1e-12);
  assert.ok(Math.abs(f('loading', 0.5)! - 0.5) < 1e-12);
  assert.ok(Math.abs(f('writing')! - 0.8) < 1e-12, 'a stage without a fraction is at its start');
  assert.equal(f('writing', 1), 1);
  // Words pass through unchanged.
  assert.equal(whole({ stage: 'writing', message: 'Writing b.aligned.safetensors' }).message, 'Writing b.aligned.safetensors');
});

test('permutation names in the user\'s words (out-of-core progress)', () => {
  assert.equal(permutationWords('P_residual'), 'residual stream');
  assert.equal(permutationWords('P_model.layers.12.mlp'), 'layer 12 MLP');
  assert.equal(permutationWords('P_model.layers.3.heads'), 'layer 3 attention heads');
  assert.equal(permutationWords('P_model.layers.3.kv_heads'), 'layer 3 attention heads');
  assert.equal(permutationWords('P_transformer.h.0.mlp'), 'layer 0 MLP');
  assert.equal(permutationWords('P_0'), 'P_0');
});
