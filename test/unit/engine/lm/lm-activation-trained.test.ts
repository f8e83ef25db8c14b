/**
 * Known permutations of TRAINED tiny language models are recovered exactly (issue 13 "Done
 * when"): a tiny GPT-2, a Llama (RoPE, 2 KV groups of 2 query heads) and a BERT (masked LM) are
 * trained here with Adam on a seeded Markov token language (test/unit/helpers/trainGpt2.ts,
 * trainLm.ts); a random element of each one's whole inferred group (residual + MLP + heads +
 * KV groups + q/k and v/o dimensions) is applied, and both weight matching with heads and
 * activation matching on token data give back the trained model tensor for tensor, with
 * pi(B)'s logits equal to B's to 1e-4.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { weightMatching } from '../../../../src/core/matching/weightMatching';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { lmActivationMatching } from '../../../../src/engine/compute/activationMatching';
import { loadLmCheckpoint, type LoadedLm } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { lmFeatureAxes } from '../../../../src/engine/lm/featureAxes';
import { namePrefix } from '../../../../src/engine/lm/layers';
import { buildLm } from '../../../../src/engine/lm/model';
import { logitsGap } from '../../helpers/lmMatching';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { bertConfig, llamaConfig, trainTinyBert, trainTinyLlama, writeHfFolder } from '../../helpers/trainLm';
import { markovTokens, trainTinyGpt2, writeGpt2Folder } from '../../helpers/trainGpt2';

const T = 16;
const TRAIN = 256;
const EVAL = 16;
const VOCAB = 24;
/** BERT's mask token: one id the Markov language (over VOCAB - 1 ids) never emits. */
const MASK_ID = VOCAB - 1;
const TRAINING = { seed: 1, steps: 100, batch: 16, lr: 2e-2 };

function assertSameTensors(got: TensorMap, want: TensorMap, what: string): void {
  for (const [name, t] of want) assert.deepEqual(got.get(name)!.data, t.data, `${what}: \`${name}\` differs`);
}

type Trainer = (dir: string, train: { ids: Int32Array; n: number; t: number }) => Promise<number>;

/**
 * `trained`: the training loss must be below this fraction of the uniform guess's log(vocab).
 * BERT learns slower (a masked token is read from its neighbours through attention, where the
 * causal models' next token follows from the current one) and is held to a looser bound.
 */
const FAMILIES: readonly { name: string; vocab: number; heads: RegExp; headPerms: number; trained: number; train: Trainer }[] = [
  {
    name: 'GPT-2 (2 blocks, 4 heads)',
    vocab: VOCAB,
    heads: /\.(heads|qk|vo)$/,
    headPerms: 6,
    trained: 0.6,
    train: async (dir, train) => {
      const m = { layers: 2, d: 32, heads: 4, vocab: VOCAB, positions: T };
      const r = await trainTinyGpt2(m, train, TRAINING);
      await writeGpt2Folder(dir, m, r.weights);
      return r.loss;
    },
  },
  {
    name: 'Llama (2 blocks, RoPE, 4 query heads in 2 KV groups)',
    vocab: VOCAB,
    heads: /\.(kv_heads|heads|vo)$/,
    headPerms: 6,
    trained: 0.6,
    train: async (dir, train) => {
      const m = { layers: 2, d: 32, heads: 4, kvHeads: 2, headDim: 8, inter: 48, vocab: VOCAB, positions: T };
      const r = await trainTinyLlama(m, train, TRAINING);
      await writeHfFolder(dir, llamaConfig(m), r.weights);
      return r.loss;
    },
  },
  {
    name: 'BERT (2 blocks, 4 heads, masked LM)',
    vocab: VOCAB - 1,
    heads: /\.(heads|qk|vo)$/,
    headPerms: 6,
    trained: 0.85,
    train: async (dir, train) => {
      const m = { layers: 2, d: 32, heads: 4, inter: 64, vocab: VOCAB, positions: T };
      const r = await trainTinyBert(m, train, { ...TRAINING, steps: 150, lr: 1e-2, maskId: MASK_ID });
      await writeHfFolder(dir, bertConfig(m), r.weights);
      return r.loss;
    },
  },
];

for (const family of FAMILIES) {
  describe(`known permutations of a trained tiny ${family.name}`, () => {
    let tmp: TmpDir;
    let lm: LoadedLm;
    let spec: PermSpec;
    let evalIds: Int32Array;
    let b: TensorMap;

    before(async () => {
      await initBackend('wasm');
      tmp = await makeTmpDir('rebasin-lm-trained-');
      const all = markovTokens(TRAIN + EVAL, T, family.vocab, 7);
      const dir = path.join(tmp.path, 'model');
      const loss = await family.train(dir, { ids: all.subarray(0, TRAIN * T), n: TRAIN, t: T });
      // Trained for real: below the uniform guess.
      assert.ok(loss < family.trained * Math.log(VOCAB), `training loss ${loss}`);
      evalIds = all.slice(TRAIN * T);
      lm = await loadLmCheckpoint(dir);
      spec = inferSpec([...lm.tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), readHfConfig(lm.paths.weights)).spec;
      assert.equal(Object.keys(spec.perms).filter((p) => family.heads.test(p)).length, family.headPerms, 'heads and their inner permutations in the spec');
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
      const input = prepareLmEvaluation(lm.config, { ids: evalIds, n: EVAL, t: T, source: 'eval', description: 'Markov tokens' }, { maskId: MASK_ID });
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
}
