/**
 * Recovering a spec's permutations from B and π(B) (src/core/matching/recoverPermutations.ts):
 * on real Hugging Face weights (GPT-2 heads; Llama GQA with KV groups, heads per group and head
 * dimensions), random permutations applied by core's gather are recovered exactly; the pairing
 * of a file that is not π(B) is reported inexact through the bit-for-bit check, not here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { axisPermutations, permuteBytes, randomPermutations } from '../../../../src/core/matching/permute';
import { multisetHash, sliceHashes, UnitSignatures } from '../../../../src/core/matching/recoverPermutations';
import { hfFixture } from '../../helpers/hfFixtures';

async function recoverOn(fixture: string, seed: number): Promise<void> {
  const ck = await openCheckpoint(path.join(hfFixture(fixture), 'model.safetensors'));
  try {
    const spec = inferSpec(ck.tensors, readHfConfig(ck.path)).spec;
    assert.ok(spec.blocks && Object.keys(spec.blocks).length > 0, `${fixture}: the spec has per-head permutations`);
    const truth = randomPermutations(spec, seed);
    const signatures = new UnitSignatures(spec);
    for (const [name, entries] of Object.entries(spec.axes)) {
      const info = ck.get(name)!;
      const raw = await ck.readRaw(name);
      const permuted = permuteBytes(raw, info.shape, axisPermutations(spec, truth, name, info.shape.length))!;
      const axes = UnitSignatures.permutedAxes(entries);
      signatures.add(entries, sliceHashes(raw, 4, info.shape, axes), sliceHashes(permuted, 4, info.shape, axes));
    }
    const found = signatures.recover();
    for (const name of Object.keys(spec.perms)) assert.deepEqual(Array.from(found[name]), Array.from(truth[name]), `${fixture}: ${name}`);
  } finally {
    await ck.close();
  }
}

describe('recovering permutations from B and π(B)', () => {
  it('slice hashes are the multiset hashes of the slices', () => {
    // A 2 x 3 tensor: rows [1 2 3], [4 5 6].
    const raw = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const h = sliceHashes(raw, 4, [2, 3], [0, 1]);
    const of = (xs: number[]): [number, number] => multisetHash(new Uint8Array(new Float32Array(xs).buffer), 4);
    assert.deepEqual([h.get(0)!.h1[1], h.get(0)!.h2[1]], of([6, 4, 5]));
    assert.deepEqual([h.get(1)!.h1[2], h.get(1)!.h2[2]], of([6, 3]));
  });

  it('GPT-2: heads, q/k and v/o dimensions, MLP units, the residual stream', async () => {
    await recoverOn('gpt2-tiny', 11);
  });

  it('Llama GQA: KV groups, heads per group, head dimensions', async () => {
    await recoverOn('llama-tiny-gqa', 12);
  });
});
