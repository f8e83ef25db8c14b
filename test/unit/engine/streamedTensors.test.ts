/**
 * Out-of-core weight matching's reader (src/engine/streamedTensors.ts): tensors read from their
 * shards at each use give the values `readHeld` loads (BF16 as stored, F32 as float32), the reader
 * keeps at most its bound (the largest tensor), and a NaN is refused naming file and tensor as at
 * load. The choice between holding the pair and streaming it (core/memoryPlan.ts chooseHolding).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Checkpoint } from '../../../src/core/checkpoint';
import { openCheckpoint } from '../../../src/core/safetensors';
import { float32Of, heldBytes, isStreamed } from '../../../src/core/heldTensor';
import { chooseHolding } from '../../../src/core/memoryPlan';
import { MemoryBudgetError } from '../../../src/core/memoryBudget';
import { readHeld } from '../../../src/engine/loadTensors';
import { canStream, streamKeepBytes, streamStats, streamTensors } from '../../../src/engine/streamedTensors';
import { EngineError } from '../../../src/engine/errors';
import { encodeFromFloat32, writeSafetensors } from '../../../src/core/safetensors';
import { generateLlamaPair, PRESETS } from '../../../bench/scale/generate';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-stream-');
});
after(() => tmp.remove());

async function sameAsLoaded(ck: Checkpoint): Promise<void> {
  const names = ck.tensors.map((t) => t.name);
  const streamed = streamTensors(ck, names, {});
  const keep = streamKeepBytes(ck, names);
  assert.equal(streamed.stats.keepBytes, keep);
  // Twice over every tensor: each use reads again (nothing beyond the bound stays).
  for (let round = 0; round < 2; round++) {
    for (const name of names) {
      const s = streamed.tensors.get(name)!;
      const h = await readHeld(ck, name, {});
      assert.ok(isStreamed(s) && heldBytes(s) === 0);
      assert.deepEqual(s.shape, h.shape);
      assert.deepEqual(float32Of(s), float32Of(h), name);
      assert.ok(streamed.stats.heldBytes <= keep, `${name}: ${streamed.stats.heldBytes} held, bound ${keep}`);
    }
  }
  assert.ok(streamed.stats.peakHeldBytes <= keep && streamed.stats.peakHeldBytes > 0);
  const stored = ck.tensors.reduce((s, t) => s + t.byteLength, 0);
  assert.ok(streamed.stats.bytesRead >= 2 * stored - keep, `read ${streamed.stats.bytesRead} of 2 x ${stored}`);
  assert.equal(streamStats(streamed.tensors), streamed.stats);
}

describe('streamed tensors', () => {
  it('read from the shards of a BF16 pair: the values readHeld loads, at most the largest tensor held', async () => {
    const pair = await generateLlamaPair({ shape: PRESETS.tiny, dir: tmp.file('pair'), seed: 1, maxShardBytes: 8 * 1024 });
    const ck = await openCheckpoint(path.join(pair.b, 'model.safetensors.index.json'));
    try {
      assert.ok(canStream(ck) && ck.tensors.every((t) => t.dtype === 'BF16'));
      await sameAsLoaded(ck);
    } finally {
      await ck.close();
    }
  });

  it('read from the F32 shards of the transformers fixture', async () => {
    const ck = await openCheckpoint(path.join(hfFixture('llama-tiny-gqa-sharded'), 'model.safetensors.index.json'));
    try {
      await sameAsLoaded(ck);
    } finally {
      await ck.close();
    }
  });

  it('a NaN is refused when the tensor is read, naming file and tensor; zeroed and recorded when allowed', async () => {
    const file = tmp.file('nan.safetensors');
    await writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [2, 2], read: async () => encodeFromFloat32('F32', Float32Array.from([1, NaN, 3, 4])) }]);
    const ck = await openCheckpoint(file);
    try {
      const refused = streamTensors(ck, ['w'], {});
      assert.throws(() => float32Of(refused.tensors.get('w')!), (e: unknown) => e instanceof EngineError && e.kind === 'NonFinite' && /nan\.safetensors: tensor `w` holds 1 NaN/.test(e.message));
      const zeroed = new Set<string>();
      const allowed = streamTensors(ck, ['w'], { allowNonFinite: true, zeroNonFinite: zeroed });
      assert.deepEqual(Array.from(float32Of(allowed.tensors.get('w')!)), [1, 0, 3, 4]);
      assert.deepEqual([...zeroed], ['w']);
    } finally {
      await ck.close();
    }
  });
});

describe('holding the pair or streaming it', () => {
  const spec = { perms: { P: 1000 }, axes: { w: ['P', null] as (string | null)[] } };
  const shapes = new Map([['w', [1000, 1000]]]);
  // One solve: the 1000 x 1000 cost matrix (4 MB), 6 operand copies and 2 product blocks: 36 MB.
  const solve = (budget: number) => chooseHolding(spec, shapes, { budget, heldBytes: 8e9, streamedBytes: 8e6 });

  it('holds the pair when it fits, streams it when only the readers fit, refuses when one solve does not fit beside them', () => {
    assert.equal(solve(20e9).holding, 'held');
    const streamed = solve(1e9);
    assert.equal(streamed.holding, 'streamed');
    assert.equal(streamed.plan.heldBytes, 8e6);
    assert.throws(() => solve(40e6), (e: unknown) => e instanceof MemoryBudgetError && /permutation `P` \(1000 units\) needs/.test(e.message));
  });

  it('streams when asked even if the pair fits, and never when the checkpoints cannot be read on demand', () => {
    assert.equal(chooseHolding(spec, shapes, { budget: 20e9, heldBytes: 8e9, streamedBytes: 8e6, outOfCore: true }).holding, 'streamed');
    assert.throws(() => chooseHolding(spec, shapes, { budget: 1e9, heldBytes: 8e9 }), MemoryBudgetError);
  });
});
