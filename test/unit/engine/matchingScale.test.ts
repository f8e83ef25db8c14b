/**
 * The scaling pass of weight matching (src/engine/matchingScale.ts). Out of core it also gives
 * the objective before matching from the same reads: each tensor of A and B is read once, and
 * the objectives are the ones weight matching computes itself, bit for bit. With weights near the
 * float32 limit the models are scaled and weight matching computes them on the scaled values.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PermSpec } from '../../../src/core/checkpoint';
import { streamedDense, type HeldTensor } from '../../../src/core/heldTensor';
import { weightMatching } from '../../../src/core/matching/weightMatching';
import { jsMatMul } from '../../../src/core/matching/jsMatMul';
import { mulberry32 } from '../../../src/core/matching/prng';
import { scaledForMatching, scaledWithStartingDots } from '../../../src/engine/matchingScale';

const spec: PermSpec = {
  perms: { P1: 6, P2: 5 },
  axes: {
    'l0.weight': ['P1', null],
    'l0.bias': ['P1'],
    'l1.weight': ['P2', 'P1'],
    'l1.bias': ['P2'],
    'l2.weight': [null, 'P2'],
    'l2.bias': [null],
  },
};
const shapes: Record<string, number[]> = { 'l0.weight': [6, 4], 'l0.bias': [6], 'l1.weight': [5, 6], 'l1.bias': [5], 'l2.weight': [3, 5], 'l2.bias': [3] };

function model(seed: number, scale = 1): Map<string, Float32Array> {
  const random = mulberry32(seed);
  return new Map(Object.entries(shapes).map(([name, shape]) => [name, Float32Array.from({ length: shape.reduce((p, s) => p * s, 1) }, () => (random() * 2 - 1) * scale)]));
}

/** The model held in memory. */
function held(m: Map<string, Float32Array>): Map<string, HeldTensor> {
  return new Map([...m].map(([name, data]) => [name, { shape: shapes[name], data }]));
}

/** The model as streamed tensors (read at each use, as out of core), counting the reads. */
function streamed(m: Map<string, Float32Array>, reads: Map<string, number>, tag: string): Map<string, HeldTensor> {
  return new Map([...m].map(([name, data]) => [name, streamedDense(shapes[name], () => {
    reads.set(`${tag}:${name}`, (reads.get(`${tag}:${name}`) ?? 0) + 1);
    return data;
  })]));
}

describe('scaledWithStartingDots', () => {
  it('reads each tensor of A and B once, and its objectives are weight matching\'s own, bit for bit', async () => {
    const a = model(1);
    const b = model(2);
    const reads = new Map<string, number>();
    const pass = scaledWithStartingDots(spec, streamed(a, reads, 'a'), streamed(b, reads, 'b'));
    assert.equal(reads.size, 2 * Object.keys(shapes).length);
    assert.ok([...reads.values()].every((n) => n === 1), JSON.stringify([...reads]));
    assert.equal(pass.a.factor, 1);
    assert.equal(pass.b.factor, 1);
    assert.ok(pass.startingDots);
    const plain = await weightMatching(spec, held(a), held(b), { seed: 0, maxIter: 20, matmul: jsMatMul });
    const given = await weightMatching(spec, held(a), held(b), { seed: 0, maxIter: 20, matmul: jsMatMul, startingDots: pass.startingDots });
    assert.equal(given.objectiveBefore, plain.objectiveBefore);
    assert.equal(given.objectiveFixed, plain.objectiveFixed);
    assert.deepEqual(given.groups, plain.groups);
    assert.deepEqual(given.perms, plain.perms);
  });

  it('scales weights near the float32 limit as scaledForMatching does, and then gives no objectives', () => {
    const a = model(3, 1e30);
    const b = model(4);
    const pass = scaledWithStartingDots(spec, held(a), held(b));
    const alone = scaledForMatching(held(a));
    assert.equal(pass.a.factor, alone.factor);
    assert.ok(pass.a.factor < 1);
    assert.equal(pass.b.factor, 1);
    assert.equal(pass.startingDots, undefined);
  });
});
