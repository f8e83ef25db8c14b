/**
 * Backend selection and the tfjs matrix product in this thread: `auto` picks wasm when tfjs-node
 * is absent, explicit choices are honoured or refused by name, and C = A·Bᵀ on each backend
 * agrees with core's plain-JS product.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { matMulABt } from '../../../src/core/matching/jsMatMul';
import { currentBackend, initBackend, wasmDirectory } from '../../../src/engine/backend';
import { EngineError } from '../../../src/engine/errors';
import { tfAbT, tfMatMul } from '../../../src/engine/tfMatMul';
import { seeded } from '../helpers/engine-fixtures';
import { tfjsNodeExpected } from '../helpers/backend';

const hasTfjsNode = tfjsNodeExpected;

function maxRelDiff(x: Float32Array, y: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(y[i]));
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst / Math.max(scale, 1e-30);
}

describe('tfjs backend selection', () => {
  it('finds the wasm files in a folder ending with a slash', () => {
    assert.ok(wasmDirectory().endsWith('/'));
  });

  it('auto uses native tensorflow when present, else wasm, and logs the choice', async () => {
    const lines: string[] = [];
    const backend = await initBackend('auto', (l) => lines.push(l));
    assert.equal(backend, hasTfjsNode() ? 'tensorflow' : 'wasm');
    assert.equal(tf.getBackend(), backend);
    assert.equal(currentBackend(), backend);
    assert.ok(lines.some((l) => l.startsWith(`tfjs backend: ${backend}`)), lines.join('\n'));
  });

  it('refuses an explicit backend that cannot load, naming it', async () => {
    if (hasTfjsNode()) {
      assert.equal(await initBackend('tensorflow'), 'tensorflow');
      return;
    }
    await assert.rejects(initBackend('tensorflow'), (e: unknown) => e instanceof EngineError && e.kind === 'BackendUnavailable' && /backend `tensorflow` cannot load/.test(e.message));
  });
});

describe('tfMatMul', () => {
  for (const backend of [...(hasTfjsNode() ? (['tensorflow'] as const) : []), 'wasm', 'cpu'] as const) {
    it(`computes A·Bᵀ like the plain-JS product on ${backend}`, async () => {
      assert.equal(await initBackend(backend), backend);
      const rnd = seeded(backend.length);
      for (const [m, k, n] of [[1, 1, 1], [7, 13, 5], [64, 100, 48], [3, 0, 2], [0, 4, 3]]) {
        const a = Float32Array.from({ length: m * k }, () => rnd());
        const b = Float32Array.from({ length: n * k }, () => rnd());
        const got = await tfMatMul.abT(a, b, m, k, n);
        assert.equal(got.length, m * n);
        if (m * n > 0) assert.ok(maxRelDiff(got, matMulABt(a, b, m, k, n)) < 1e-5, `${m}x${k}x${n}`);
      }
      const tensorsBefore = tf.memory().numTensors;
      tfAbT(new Float32Array(6), new Float32Array(6), 2, 3, 2);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaks');
      assert.throws(() => tfAbT(new Float32Array(5), new Float32Array(6), 2, 3, 2), /a has 5 values, expected 2x3/);
    });

    it(`by blocks of rows with Bᵀ made once, gives abT's values of those rows bit for bit on ${backend}`, async () => {
      assert.equal(await initBackend(backend), backend);
      const rnd = seeded(3 + backend.length);
      for (const [m, k, n, rows] of [[10, 13, 7, 3], [64, 100, 48, 64], [9, 5, 4, 1], [4, 0, 3, 2]]) {
        const a = Float32Array.from({ length: m * k }, () => rnd());
        const b = Float32Array.from({ length: n * k }, () => rnd());
        const seen: number[] = [];
        const tensorsBefore = tf.memory().numTensors;
        await tfMatMul.abTByRows!(a, b, m, k, n, rows, (c, r0) => {
          const r1 = Math.min(m, r0 + rows);
          assert.deepEqual(c, tfAbT(a.subarray(r0 * k, r1 * k), b, r1 - r0, k, n), `${m}x${k}x${n}, rows ${r0}-${r1}`);
          seen.push(r0);
        });
        assert.deepEqual(seen, Array.from({ length: Math.ceil(m / rows) }, (_, i) => i * rows));
        assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaks');
      }
    });
  }
});
