/**
 * Mixtral's experts stacked into one block axis per projection (src/core/moe/expertStack.ts): the
 * stacked view reads as the members side by side (w1 / w3 by rows, w2 by columns), raw bytes and
 * float32 alike, and writing splits it back into B's own names, shapes and bytes. On the view,
 * weight matching recovers a known group element of the mixtral-tiny fixture exactly: expert
 * order per layer (router rows with it), each expert's units, KV groups, query heads in each
 * group, v/o dimensions and the residual stream.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { DenseTensor } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { expertMember, memberBytes, stackBytes, stackExperts, unstackSources } from '../../../../src/core/moe/expertStack';
import { openCheckpoint } from '../../../../src/core/safetensors';
import type { TensorSource } from '../../../../src/core/safetensors/writer';
import { inferSpec } from '../../../../src/core/permspec';
import { hfFixture } from '../../helpers/hfFixtures';

const WEIGHTS = path.join(hfFixture('mixtral-tiny'), 'model.safetensors');
const EXPERTS = 'model.layers.1.block_sparse_moe.experts';

describe('stacked experts', () => {
  it('stackBytes and memberBytes are inverse along rows and along columns', () => {
    const members = [0, 1, 2].map((e) => Uint8Array.from({ length: 12 }, (_, i) => 16 * e + i));
    for (const axis of [0, 1] as const) {
      const layout = { axis, rows: 3, rowBytes: 4 };
      const s = stackBytes(members, layout);
      assert.equal(s.length, 36);
      members.forEach((m, e) => assert.deepEqual(memberBytes(s, e, 3, layout), m));
    }
    // Side by side: row 0 of every member, then row 1 ...
    assert.deepEqual([...stackBytes(members, { axis: 1, rows: 3, rowBytes: 4 }).subarray(0, 8)], [0, 1, 2, 3, 16, 17, 18, 19]);
  });

  it('the view of the fixture: stacked names and shapes, bytes and float32 of the members in order', async () => {
    const ck = await openCheckpoint(WEIGHTS);
    const view = stackExperts(ck);
    try {
      assert.equal(view.tensors.filter((t) => /experts\.\d+\./.test(t.name)).length, 0);
      assert.deepEqual(view.get(`${EXPERTS}.*.w1.weight`)?.shape, [4 * 96, 64]);
      assert.deepEqual(view.get(`${EXPERTS}.*.w2.weight`)?.shape, [64, 4 * 96]);
      assert.equal(view.tensors.length, ck.tensors.length - 2 * 3 * 4 + 2 * 3);
      for (const w of ['w1', 'w2', 'w3'] as const) {
        const name = `${EXPERTS}.*.${w}.weight`;
        const stacked: DenseTensor = { shape: view.get(name)!.shape, data: await view.readFloat32(name) };
        const raw = await view.readRaw(name);
        assert.deepEqual(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), stacked.data);
        const taken = new Map([[name, stacked]]);
        for (let e = 0; e < 4; e++) assert.deepEqual(expertMember(taken, EXPERTS, e, 4, w)?.data, await ck.readFloat32(`${EXPERTS}.${e}.${w}.weight`), `${w} expert ${e}`);
      }
      // Written back: B's names, shapes and bytes, every other tensor as it was.
      const sources: TensorSource[] = view.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, read: () => view.readRaw(t.name) }));
      const out = unstackSources(sources, view);
      assert.deepEqual(out.map((s) => s.name).sort(), ck.tensors.map((t) => t.name).sort());
      for (const s of out) {
        assert.deepEqual(s.shape, ck.get(s.name)!.shape, s.name);
        assert.deepEqual(await s.read(), await ck.readRaw(s.name), s.name);
      }
    } finally {
      await view.close();
    }
  });

  it('a checkpoint without experts is its own view; sources of another checkpoint pass unchanged', async () => {
    const ck = await openCheckpoint(path.join(hfFixture('llama-tiny-gqa'), 'model.safetensors'));
    try {
      assert.equal(stackExperts(ck), ck);
      const s: TensorSource[] = [{ name: 'x', dtype: 'F32', shape: [1], read: async () => new Uint8Array(4) }];
      assert.deepEqual(unstackSources(s, ck), s);
    } finally {
      await ck.close();
    }
  });
});

describe('weight matching on the stacked experts', () => {
  it('recovers a known group element of mixtral-tiny exactly', async () => {
    const view = stackExperts(await openCheckpoint(WEIGHTS));
    const a = new Map<string, DenseTensor>();
    try {
      for (const t of view.tensors) a.set(t.name, { shape: t.shape, data: await view.readFloat32(t.name) });
    } finally {
      await view.close();
    }
    const { spec } = inferSpec(view.tensors, readHfConfig(WEIGHTS));
    const known = randomPermutations(spec, 6);
    for (const l of [0, 1]) assert.ok([...known[`P_model.layers.${l}.experts`]].some((v, i) => v !== i), `layer ${l}: the experts move`);
    const b = applyPermutations(spec, known, a);
    const r = await weightMatching(spec, a, b, { seed: 0, maxIter: 50, matmul: jsMatMul });
    const aligned = applyPermutations(spec, r.perms, b);
    for (const [name, t] of a) assert.deepEqual(aligned.get(name)!.data, t.data, `${name} is A's again`);
    // The expert order found undoes the known one: pi(B)'s expert g is B's expert found[g] = A's g.
    for (const l of [0, 1]) {
      const p = `P_model.layers.${l}.experts`;
      const found = r.perms[p];
      for (let g = 0; g < 4; g++) assert.equal(known[p][found[g]], g, `${p}[${g}]`);
    }
  });
});
