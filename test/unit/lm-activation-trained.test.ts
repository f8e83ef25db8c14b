/**
 * Known permutations of TRAINED tiny language models are recovered exactly (issue 13 "Done
 * when"): a tiny GPT-2 with several heads is trained here (Adam, next-token loss on a seeded
 * Markov token language, test/unit/helpers/trainGpt2.ts); a random element of its whole inferred
 * group (residual + MLP + heads + q/k and v/o dimensions) is applied, and both weight matching
 * with heads and activation matching on token data give back the trained model tensor for
 * tensor, with pi(B)'s logits equal to B's to 1e-4.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { PermSpec, TensorMap } from '../../src/core/checkpoint';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { jsMatMul } from '../../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../../src/core/matching/permute';
import { weightMatching } from '../../src/core/matching/weightMatching';
import { inferSpec } from '../../src/core/spec';
import { initBackend } from '../../src/engine/backend';
import { lmActivationMatching } from '../../src/engine/compute/activationMatching';
import { loadLmCheckpoint, type LoadedLm } from '../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../src/engine/lm/evaluate';
import { lmFeatureAxes } from '../../src/engine/lm/featureAxes';
import { namePrefix } from '../../src/engine/lm/layers';
import { buildLm } from '../../src/engine/lm/model';
import { logitsGap } from './helpers/lmMatching';
import { makeTmpDir, type TmpDir } from './helpers/tmp';
import { markovTokens, trainTinyGpt2, writeGpt2Folder, type TinyGpt2 } from './helpers/trainGpt2';

const MODEL: TinyGpt2 = { layers: 2, d: 32, heads: 4, vocab: 24, positions: 16 };
const T = 16;
const TRAIN = 256;
const EVAL = 16;

function assertSameTensors(got: TensorMap, want: TensorMap, what: string): void {
  for (const [name, t] of want) assert.deepEqual(got.get(name)!.data, t.data, `${what}: \`${name}\` differs`);
}

describe('known permutations of a trained tiny GPT-2 (2 blocks, 4 heads)', () => {
  let tmp: TmpDir;
  let lm: LoadedLm;
  let spec: PermSpec;
  let evalIds: Int32Array;
  let b: TensorMap;

  before(async () => {
    await initBackend('wasm');
    tmp = await makeTmpDir('rebasin-lm-trained-');
    const all = markovTokens(TRAIN + EVAL, T, MODEL.vocab, 7);
    const trained = await trainTinyGpt2(MODEL, { ids: all.subarray(0, TRAIN * T), n: TRAIN, t: T }, { seed: 1, steps: 100, batch: 16, lr: 2e-2 });
    // Trained for real: well below the uniform guess.
    assert.ok(trained.loss < 0.6 * Math.log(MODEL.vocab), `training loss ${trained.loss}`);
    evalIds = all.slice(TRAIN * T);
    const dir = path.join(tmp.path, 'gpt2');
    await writeGpt2Folder(dir, MODEL, trained.weights);
    lm = await loadLmCheckpoint(dir);
    spec = inferSpec([...lm.tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), readHfConfig(lm.paths.weights)).spec;
    assert.ok(Object.keys(spec.perms).filter((p) => /\.(heads|qk|vo)$/.test(p)).length === 3 * MODEL.layers, 'heads, q/k and v/o in the spec');
    b = applyPermutations(spec, randomPermutations(spec, 21), lm.tensors);
  });
  after(() => tmp?.remove());

  it('weight matching with heads recovers it exactly', async () => {
    const r = await weightMatching(spec, lm.tensors, b, { seed: 0, maxIter: 50, matmul: jsMatMul });
    const aligned = applyPermutations(spec, r.perms, b);
    assertSameTensors(aligned, lm.tensors, 'weight matching');
    const gap = await logitsGap(lm.config, b, aligned, evalIds, EVAL, T);
    assert.ok(gap < 1e-4, `pi(B)'s logits differ from B's by ${gap}`);
  });

  it('activation matching on the tokens recovers it exactly', async () => {
    const input = prepareLmEvaluation(lm.config, { ids: evalIds, n: EVAL, t: T, source: 'eval', description: 'Markov tokens' });
    const which = lmFeatureAxes(spec, lm.config, namePrefix(lm.tensors, lm.config, lm.paths.weights));
    const [ma, mb] = [buildLm(lm.tensors, lm.config), buildLm(b, lm.config)];
    try {
      const r = await lmActivationMatching(spec, ma, mb, input, which);
      assert.deepEqual(r.unobserved, []);
      const aligned = applyPermutations(spec, r.perms, b);
      assertSameTensors(aligned, lm.tensors, 'activation matching');
      const gap = await logitsGap(lm.config, b, aligned, evalIds, EVAL, T);
      assert.ok(gap < 1e-4, `pi(B)'s logits differ from B's by ${gap}`);
    } finally {
      ma.dispose();
      mb.dispose();
    }
  });
});
