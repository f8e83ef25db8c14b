/**
 * Activation matching for transformers (compute/activationMatching.ts `lmActivationMatching`,
 * Git Re-Basin section 3.1 on the residual stream and the MLP hidden units): a known permutation
 * of the tiny GPT-2 fixture (residual stream + every MLP) is recovered exactly from the models'
 * features on token data, directly and through the align handler (`method: "activation"` on a
 * Hugging Face checkpoint with token data).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, PermSpec, Permutations } from '../../src/core/checkpoint';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { applyPermutations, identityPermutations, invertPermutation, randomPermutations } from '../../src/core/matching/permute';
import { writeSafetensors } from '../../src/core/safetensors';
import { inferSpec } from '../../src/core/spec';
import { initBackend } from '../../src/engine/backend';
import { lmActivationMatching } from '../../src/engine/compute/activationMatching';
import type { HandlerContext } from '../../src/engine/dispatch';
import { alignHandler } from '../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../src/engine/lm/evaluate';
import { buildLm } from '../../src/engine/lm/model';
import { hfFixture } from './helpers/hfFixtures';
import { randomTokens } from './helpers/lmReference';
import { makeTmpDir, type TmpDir } from './helpers/tmp';
import { writeTokensNpy } from './helpers/trainGpt2';

/** The permutations activation matching finds for GPT-2: the residual stream and each MLP's units. */
const MOVED = ['P_residual', 'P_transformer.h.0.mlp', 'P_transformer.h.1.mlp'];

/** gpt2-tiny's inferred spec (heads included: its config.json gives the head count). */
function gpt2Spec(tensors: ReadonlyMap<string, DenseTensor>): PermSpec {
  const hf = readHfConfig(path.join(hfFixture('gpt2-tiny'), 'model.safetensors'));
  const spec = inferSpec([...tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), hf).spec;
  for (const name of MOVED) assert.ok(spec.perms[name] !== undefined, `${name} in the spec`);
  return spec;
}

/** A random element moving the residual stream and the MLP units, heads left as they are. */
function residualAndMlp(spec: PermSpec, seed: number): Permutations {
  const random = randomPermutations(spec, seed);
  return { ...identityPermutations(spec), ...Object.fromEntries(MOVED.map((n) => [n, random[n]])) };
}

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-am-');
});
after(() => tmp.remove());

test('activation matching recovers a known residual + MLP permutation of a tiny GPT-2 exactly', async () => {
  const lm = await loadLmCheckpoint(hfFixture('gpt2-tiny'));
  const a = lm.tensors;
  const spec = gpt2Spec(a);
  const known = residualAndMlp(spec, 5);
  const b = applyPermutations(spec, known, a);
  const n = 8;
  const t = 32;
  const ids = randomTokens(n, t, lm.config.vocab, 9);
  const input = prepareLmEvaluation(lm.config, { ids, n, t, source: 'ids', description: 'random ids' });
  const [ma, mb] = [buildLm(a, lm.config), buildLm(b, lm.config)];
  try {
    const r = await lmActivationMatching(spec, ma, mb, input, { residual: 'P_residual', mlp: ['P_transformer.h.0.mlp', 'P_transformer.h.1.mlp'] });
    // Heads are not matched from activations yet: only they stay unobserved (the identity, as B's are).
    assert.deepEqual(r.unobserved.filter((n) => !/\.(heads|qk|vo)$/.test(n)), []);
    // B's unit j is A's unit known[j]: the matching pi(B)_i = B_{perm[i]} = A_i undoes it.
    for (const name of MOVED) {
      const p = known[name];
      assert.deepEqual([...r.perms[name]], [...invertPermutation(p)], name);
      assert.ok(r.correlation[name].after > 0.999, `${name}: correlation ${r.correlation[name].after}`);
    }
    const back = applyPermutations(spec, r.perms, b);
    for (const [name, x] of a) assert.deepEqual(back.get(name)!.data, x.data, name);
  } finally {
    ma.dispose();
    mb.dispose();
  }
});

test('align with method "activation" on a Hugging Face GPT-2 and token data recovers the permutation', async () => {
  const src = hfFixture('gpt2-tiny');
  const lm = await loadLmCheckpoint(src);
  const spec = gpt2Spec(lm.tensors);
  const known = residualAndMlp(spec, 6);
  const b = applyPermutations(spec, known, lm.tensors);
  // B: a folder of its own with A's config.json; A: the fixture.
  const dirB = tmp.file('b');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dirB);
  copyFileSync(path.join(src, 'config.json'), path.join(dirB, 'config.json'));
  const bytes = (t: DenseTensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  await writeSafetensors(path.join(dirB, 'model.safetensors'), [...b].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, read: async () => bytes(t) })), { metadata: { format: 'pt' } });
  const data = tmp.file('ids.npy');
  writeTokensNpy(data, randomTokens(8, 32, lm.config.vocab, 10), 8, 32);
  const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
  const r = await alignHandler({ kind: 'align', a: path.join(src, 'model.safetensors'), b: path.join(dirB, 'model.safetensors'), method: 'activation', seed: 0, maxIter: 1, data: { path: data } }, ctx);
  for (const name of MOVED) assert.deepEqual(r.perms[name], [...invertPermutation(known[name])], name);
});
