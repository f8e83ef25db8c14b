/**
 * The engine's pure pieces: message validation, error serialization, progress throttling,
 * barrier arithmetic, λ chunking and raw-byte permutation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Progress } from '../../../src/core/checkpoint';
import { barrierFromCurve, lambdaGrid } from '../../../src/core/barrier';
import { permuteTensor } from '../../../src/core/matching/permute';
import { SafetensorsError } from '../../../src/core/safetensors';
import { decodeToFloat32, encodeFromFloat32 } from '../../../src/core/safetensors';
import { chunk } from '../../../src/engine/client';
import { EngineError, deserializeError, errorKind, serializeError } from '../../../src/engine/errors';
import { gatherIndex } from '../../../src/core/matching/permute';
import { permuteRawBytes } from '../../../src/engine/loadTensors';
import type { EngineRequest } from '../../../src/engine/protocol';
import { collectTransferables, throttleProgress } from '../../../src/engine/rpc';
import { validateFromWorker, validateRequest, validateResult, validateToWorker } from '../../../src/engine/validate';
import { randomPerm, seeded } from '../helpers/engine-fixtures';

const data = { path: '/data/mnist' };
const good: EngineRequest[] = [
  { kind: 'align', a: 'a.safetensors', b: 'b.safetensors', method: 'weight', seed: 0, maxIter: 100, includeMatrices: true },
  { kind: 'merge', inputs: ['a', 'b', 'c'], out: 'm', lambda: 0.5, align: true, seed: 1, maxIter: 10 },
  { kind: 'barrier', a: 'a', b: 'b', data: { ...data, split: 'both', limit: 100 }, steps: 25, align: true, seed: 0, maxIter: 100 },
  { kind: 'evaluatePath', a: 'a', b: 'b', perms: { P0: [2, 0, 1] }, lambdas: [0, 0.5], data },
  { kind: 'tensorStats', path: 'a', tensor: 'x', bins: 64 },
  { kind: 'train', data, widths: [784, 10], epochs: 1, batchSize: 32, learningRate: 1e-3, seed: 0, out: 'o' },
  { kind: 'backend' },
  { kind: 'barrier', a: 'a', b: 'b', data, steps: 5, align: true, seed: 0, maxIter: 100, method: 'activation', perms: { P0: [1, 0] }, memoryBudget: 2 ** 30 },
  { kind: 'barrier', a: 'a', b: 'b', data, steps: 5, align: true, seed: 0, maxIter: 100, alignedCheckpoint: 'b.aligned.safetensors' },
  { kind: 'barrier', a: 'a', b: 'b', data, steps: 5, align: true, seed: 0, maxIter: 100, method: 'ste', ste: { epochs: 1, batchSize: 100, learningRate: 1e-3 } },
  { kind: 'diff', a: 'a', b: 'b' },
  { kind: 'diff', a: 'a', b: 'b', align: true, method: 'weight', seed: 0, maxIter: 100, memoryBudget: 2 ** 30 },
  { kind: 'scan', path: 'a' },
  { kind: 'diffTensor', a: 'a', b: 'b', tensor: 'layers.0.weight', perms: { P0: [1, 0] }, bins: 64, maxSide: 256 },
  { kind: 'diff', a: 'a', b: 'b', align: true, keepPerms: true },
  { kind: 'equivalence', b: 'b', other: 'b.aligned.safetensors', data, seed: 0, memoryBudget: 2 ** 30 },
];

function rejects(x: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateRequest(x),
    (e: unknown) => e instanceof EngineError && e.kind === 'InvalidMessage' && pattern.test(e.message),
  );
}

describe('message validation', () => {
  it('accepts a well-formed request of every kind', () => {
    for (const r of good) assert.equal(validateRequest(r), r);
    for (const r of good) validateToWorker({ type: 'request', id: 7, request: r });
  });

  it('rejects malformed requests naming the field and the rule', () => {
    rejects(null, /request: must be an object/);
    rejects({ kind: 'explode' }, /field `kind` must be one of/);
    rejects({ ...good[0], a: '' }, /align request: field `a` must be a non-empty string/);
    rejects({ ...good[0], method: 'magic' }, /field `method`/);
    rejects({ ...good[0], maxIter: 0 }, /field `maxIter` must be an integer >= 1/);
    rejects({ ...good[0], seed: 1.5 }, /field `seed`/);
    rejects({ ...good[1], inputs: ['only-one'] }, /at least two paths/);
    rejects({ ...good[1], lambda: Number.NaN }, /field `lambda` must be a finite number/);
    rejects({ ...good[2], steps: 1 }, /field `steps`/);
    rejects({ ...good[2], data: { path: 'x', split: 'validation' } }, /field `split`/);
    rejects({ ...good[3], perms: { P0: [0, 0, 1] } }, /permutation `P0` is not a permutation/);
    rejects({ ...good[3], lambdas: [] }, /must not be empty/);
    rejects({ ...good[4], bins: 0 }, /field `bins`/);
    rejects({ ...good[5], widths: [784] }, /field `widths`/);
    rejects({ ...good[7], alignedCheckpoint: 'x.safetensors' }, /`perms` or `alignedCheckpoint`, not both/);
    rejects({ ...good[7], method: 'magic' }, /field `method`/);
    rejects({ ...good[7], perms: { P0: [1, 1] } }, /not a permutation/);
    rejects({ ...good[7], memoryBudget: 0 }, /field `memoryBudget`/);
    rejects({ ...good[3], memoryBudget: -1 }, /field `memoryBudget`/);
    rejects({ ...good[13], maxSide: 5000 }, /field `maxSide`/);
    rejects({ ...good[13], tensor: '' }, /diffTensor request: field `tensor` must be a non-empty string/);
    rejects({ ...good[13], perms: { P0: [0, 0] } }, /not a permutation/);
    rejects({ ...good[9], ste: { epochs: 0, batchSize: 1, learningRate: 1 } }, /field `epochs`/);
    assert.throws(() => validateToWorker({ type: 'request', id: 0, request: good[6] }), /field `id`/);
    assert.throws(() => validateToWorker({ type: 'shout', id: 1 }), /field `type`/);
  });

  it('validates messages and results coming back from the worker', () => {
    validateFromWorker({ type: 'ready', backend: 'wasm' });
    validateFromWorker({ type: 'progress', id: 1, progress: { stage: 'weight-matching', iteration: 2, fraction: 0.5 } });
    validateFromWorker({ type: 'error', id: 0, error: { kind: 'BackendUnavailable', message: 'no' } });
    assert.throws(() => validateFromWorker({ type: 'ready', backend: 'gpu' }), /field `backend`/);
    assert.throws(() => validateFromWorker({ type: 'progress', id: 1, progress: { fraction: 1 } }), /field `stage`/);
    validateFromWorker({ type: 'progress', id: 1, progress: { stage: 'loss curve', point: { lambda: 0.5, loss: Number.NaN, acc: 0.1, path: 'aligned', split: 'test' } } });
    assert.throws(() => validateFromWorker({ type: 'progress', id: 1, progress: { stage: 's', point: { lambda: 0.5, loss: 1, acc: 0.1, path: 'sideways' } } }), /field `path`/);
    assert.throws(() => validateFromWorker({ type: 'progress', id: 1, progress: { stage: 's', point: { loss: 1, acc: 0.1 } } }), /field `lambda`/);
    assert.throws(() => validateFromWorker({ type: 'error', id: 2, error: { message: 'x' } }), /field `kind`/);
    validateResult('evaluatePath', { lambdas: [0, 1], loss: [0.1, Number.NaN], acc: [0.9, 0.1] });
    assert.throws(() => validateResult('evaluatePath', { lambdas: [0, 1], loss: [0.1], acc: [0.9, 0.1] }), /same length/);
    const align = {
      method: 'weight', seconds: 1, iterations: 2, objectiveBefore: 1, objectiveAfter: 2, perms: { P: [1, 0] }, backend: 'wasm',
      groups: [{ name: 'P', size: 2, moved: 2, objectiveBefore: 1, objectiveAfter: 2 }],
      matrices: [{ name: 'P', size: 2, before: new Float32Array(4), after: new Float32Array(4) }],
    };
    validateResult('align', align);
    assert.throws(() => validateResult('align', { ...align, matrices: [{ ...align.matrices[0], after: new Float32Array(3) }] }), /Float32Array of 2x2/);
    assert.throws(() => validateResult('tensorStats', { tensor: 't', count: 1, min: 0, max: 0, mean: 0, std: 0, nanCount: 0, infCount: 0, histogram: { edges: [0, 1], counts: [1, 0] } }), /one more edge/);
  });
});

describe('message validation: one rule per shape', () => {
  const curve = { lambdas: [0, 0.5, 1], naive: { loss: [1, 2, 1], acc: [0.9, 0.5, 0.9] }, barrier: { naive: 1 } };
  const barrier = { ...curve, backend: 'wasm', seconds: 1, workers: 2 };
  const stats = { tensor: 't', count: 1, min: 0, max: 0, mean: 0, std: 0, nanCount: 0, infCount: 0 };

  it('a curve has one loss and one accuracy per λ, on both paths and in every split', () => {
    validateResult('barrier', barrier);
    validateResult('barrier', { ...barrier, aligned: { loss: [1, 1, 1], acc: [1, 1, 1], perplexity: [2.7, 2.7, 2.7] }, barrier: { naive: 1, aligned: 0 } });
    assert.throws(() => validateResult('barrier', { ...barrier, naive: { loss: [1, 2, 1], acc: [] } }), /`naive\.acc` must have one value per lambda \(3\), has 0/);
    assert.throws(() => validateResult('barrier', { ...barrier, aligned: { loss: [1, 1], acc: [1, 1] } }), /`aligned\.loss` must have one value per lambda/);
    assert.throws(() => validateResult('barrier', { ...barrier, naive: { ...curve.naive, perplexity: [1] } }), /`naive\.perplexity`/);
    assert.throws(() => validateResult('barrier', { ...barrier, splits: { train: { ...curve, naive: { loss: [1], acc: [1] } } } }), /barrier result field `splits` field `train`: `naive\.loss` must have one value per lambda/);
    assert.throws(() => validateResult('evaluatePath', { lambdas: [0, 1], loss: [1, 1], acc: [] }), /same length/);
  });

  it('a histogram has one more edge than counts, or none of either', () => {
    validateResult('tensorStats', { ...stats, histogram: { edges: [0, 0.5, 1], counts: [3, 4] } });
    validateResult('tensorStats', { ...stats, count: 0, histogram: { edges: [], counts: [] } });
    assert.throws(() => validateResult('tensorStats', { ...stats, histogram: { edges: [0, 1], counts: [1, 0] } }), /one more edge than counts/);
    assert.throws(() => validateResult('tensorStats', { ...stats, histogram: { edges: [0, 1], counts: [] } }), /one more edge than counts/);
    assert.throws(() => validateResult('tensorStats', { ...stats, histogram: { edges: [0, 1], counts: [1.5] } }), /field `histogram`: field `counts\[0\]` must be an integer >= 0/);
  });

  it('names a missing field with its rule, nested fields with their path', () => {
    const { seed: _seed, ...noSeed } = good[0] as { seed: number };
    rejects(noSeed, /^invalid align request: field `seed` must be an integer in \[0, 4294967295\]$/);
    rejects({ ...good[2], data: { path: 'x', limit: 0 } }, /^invalid barrier request field `data`: field `limit` must be an integer >= 1$/);
    rejects({ ...good[3], lambdas: [0, Number.POSITIVE_INFINITY] }, /field `lambdas\[1\]` must be a finite number/);
    rejects({ ...good[13], maxSide: 5000 }, /field `maxSide`/);
    rejects({ ...good[13], tensor: '' }, /diffTensor request: field `tensor` must be a non-empty string/);
    rejects({ ...good[13], perms: { P0: [0, 0] } }, /not a permutation/);
    rejects({ ...good[9], ste: { epochs: 1, batchSize: 1, learningRate: 0 } }, /^invalid barrier request field `ste`: field `learningRate` must be a number > 0$/);
    assert.throws(() => validateFromWorker({ type: 'progress', id: 1 }), /invalid progress message: field `progress` must be an object$/);
    assert.throws(() => validateResult('align', { method: 'weight' }), /invalid align result: field `seconds` must be a number$/);
  });

  it('returns the message it was given: same object, unknown fields kept, typed arrays untouched', () => {
    const withExtra = { ...good[0], futureField: { any: 'thing' } };
    assert.equal(validateRequest(withExtra), withExtra);
    assert.deepEqual((validateRequest(withExtra) as unknown as { futureField: unknown }).futureField, { any: 'thing' });
    const before = new Float32Array([1, 0, 0, 1]);
    const align = {
      method: 'weight', seconds: 1, iterations: 1, objectiveBefore: 0, objectiveAfter: 1, perms: { P: [1, 0] }, backend: 'cpu',
      groups: [], matrices: [{ name: 'P', size: 2, before, after: before }],
    };
    assert.equal(validateResult('align', align).matrices?.[0].before, before);
  });
});

describe('errors on the wire', () => {
  it('keeps the kind and file of every area and maps aborts to Cancelled', () => {
    const st = new SafetensorsError('InvalidOffset', '/x/model.safetensors', 'tensor `w` offsets overlap', 'w');
    const wire = serializeError(st);
    assert.equal(wire.kind, 'SafetensorsError:InvalidOffset');
    assert.equal(wire.file, '/x/model.safetensors');
    assert.equal(wire.message, 'x/model.safetensors: tensor `w` offsets overlap', 'a Hugging Face file is named with its folder');
    const back = deserializeError(wire);
    assert.ok(back instanceof EngineError);
    assert.equal(back.kind, 'SafetensorsError:InvalidOffset');
    assert.equal(back.file, '/x/model.safetensors');
    assert.equal(errorKind(new EngineError('WorkerDied', 'gone')), 'WorkerDied');
    assert.equal(errorKind(Object.assign(new Error('x'), { name: 'MatchingError', kind: 'Cancelled' })), 'Cancelled');
    assert.equal(errorKind(new DOMException('stop', 'AbortError')), 'Cancelled');
    assert.equal(errorKind(new TypeError('bad')), 'TypeError');
    assert.equal(serializeError('plain string').kind, 'Error');
    assert.equal(serializeError(new Error('one\ntwo')).message, 'one');
  });
});

describe('progress throttling', () => {
  it('sends milestones at once, throttles the rest and delivers the latest late', async () => {
    const sent: string[] = [];
    const t = throttleProgress((p) => sent.push(p.message ?? p.stage), 200);
    t.push({ stage: 'a', iteration: 1, message: 'first' });
    t.push({ stage: 'a', iteration: 1, message: 'dropped' });
    t.push({ stage: 'a', iteration: 1, message: 'latest' });
    t.push({ stage: 'a', iteration: 2, message: 'next sweep' });
    t.push({ stage: 'a', iteration: 2, message: 'pending' });
    // 'latest' was waiting for the interval when the next sweep began: the newer state wins.
    assert.deepEqual(sent, ['first', 'next sweep']);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sent, ['first', 'next sweep', 'pending']);
    t.push({ stage: 'b', message: 'new stage' });
    t.push({ stage: 'b', message: 'never: stopped' });
    t.stop();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sent, ['first', 'next sweep', 'pending', 'new stage']);
  });

  it('never throttles a curve point away', () => {
    const sent: Progress[] = [];
    const t = throttleProgress((p) => sent.push(p), 10_000);
    for (let i = 0; i < 5; i++) t.push({ stage: 'loss curve', message: `Loss curve: ${i + 1} of 5 points`, point: { lambda: i / 4, loss: i, acc: 0 } });
    t.stop();
    assert.deepEqual(sent.map((p) => p.point?.lambda), [0, 0.25, 0.5, 0.75, 1]);
  });

  it('transfers only whole, unshared buffers', () => {
    const whole = new Float32Array(4);
    const view = new Float32Array(new ArrayBuffer(64), 16, 4);
    const list = collectTransferables({ a: whole, b: [view, whole], c: { d: new Uint8Array(2) } });
    assert.equal(list.length, 2);
    assert.ok(list.includes(whole.buffer));
  });
});

describe('barrier arithmetic', () => {
  it('measures the rise above the line between the endpoints', () => {
    assert.deepEqual(lambdaGrid(5), [0, 0.25, 0.5, 0.75, 1]);
    assert.equal(lambdaGrid(25).length, 25);
    assert.throws(() => lambdaGrid(1), /steps/);
    assert.equal(barrierFromCurve([0, 0.5, 1], [1, 3, 2]), 3 - 1.5);
    assert.equal(barrierFromCurve([0, 0.5, 1], [1, 1, 1]), 0);
    assert.equal(barrierFromCurve([0, 0.5, 1], [2, 0.5, 1]), 0, 'a curve below the line has barrier 0');
    assert.equal(barrierFromCurve([1, 0, 0.5], [2, 1, 3]), 1.5, 'lambdas in any order');
    assert.ok(Number.isNaN(barrierFromCurve([0, 0.5, 1], [1, Number.NaN, 1])));
    assert.throws(() => barrierFromCurve([0, 1], [1]), /2 lambdas but 1 losses/);
  });

  it('splits a grid into near-equal contiguous chunks', () => {
    assert.deepEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2, 3], [4, 5]]);
    assert.deepEqual(chunk([1, 2], 4), [[1], [2]]);
    assert.deepEqual(chunk(lambdaGrid(25), 3).map((c) => c.length), [9, 8, 8]);
  });
});

describe('raw-byte permutation', () => {
  it('matches the float32 permutation for every whole-byte dtype', () => {
    const rnd = seeded(5);
    const shape = [6, 5, 3];
    const values = Float32Array.from({ length: 90 }, () => rnd());
    const perms = [randomPerm(6, 1), null, randomPerm(3, 2)];
    const expected = permuteTensor({ shape, data: values }, perms).data;
    for (const dtype of ['F32', 'F64', 'F16', 'BF16']) {
      const bytes = encodeFromFloat32(dtype, values);
      const permuted = permuteRawBytes(bytes, dtype, shape, perms, 'x.safetensors', 'w');
      const decoded = decodeToFloat32(dtype, permuted);
      const reference = permuteTensor({ shape, data: decodeToFloat32(dtype, bytes) }, perms).data;
      assert.deepEqual(decoded, reference, dtype);
      if (dtype === 'F32') assert.deepEqual(decoded, expected);
    }
    const u8 = Uint8Array.from({ length: 90 }, (_, i) => i);
    assert.deepEqual(Array.from(permuteRawBytes(u8, 'U8', shape, perms, 'x', 'w')), Array.from(gatherIndex(shape, perms)));
    assert.throws(() => permuteRawBytes(new Uint8Array(45), 'F4', shape, perms, 'x.safetensors', 'w'), /not whole bytes/);
  });
});
