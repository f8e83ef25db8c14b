/**
 * The LM straight-through estimator (src/engine/compute/lmSte.ts) optimising for real, seeded, on
 * tiny language models trained here: on two GPT-2s trained apart on the same Markov language it
 * lowers the midpoint loss below activation matching's; when B is a permutation of A it gives
 * pi(B) = A back; a Llama with RoPE and grouped-query attention and a BERT (masked LM) run
 * through it; a cancelled run throws and returns nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { lmActivationMatching } from '../../../../src/engine/compute/activationMatching';
import { lmSteMatching, type LmSteOptions } from '../../../../src/engine/compute/lmSte';
import { loadLmCheckpoint, type LoadedLm } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation, type LmEvaluationInput } from '../../../../src/engine/lm/evaluate';
import { lmFeatureAxes } from '../../../../src/engine/lm/featureAxes';
import { namePrefix } from '../../../../src/engine/lm/layers';
import { buildLm } from '../../../../src/engine/lm/model';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { bertConfig, llamaConfig, trainTinyBert, trainTinyLlama, writeHfFolder } from '../../helpers/trainLm';
import { markovTokens, trainTinyGpt2, writeGpt2Folder } from '../../helpers/trainGpt2';

const T = 16;
const TRAIN = 128;
const VOCAB = 24;
const MASK_ID = VOCAB - 1;
const TRAINING = { steps: 80, batch: 16, lr: 2e-2 };
const STE: Omit<LmSteOptions, 'epochs'> = { batchSize: 16, learningRate: 1e-2, seed: 0, maxIter: 20, matmul: jsMatMul, budgetBytes: 256 * 1024 * 1024 };

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-ste-');
});
after(() => tmp?.remove());

interface Pair {
  readonly a: LoadedLm;
  readonly b: TensorMap;
  readonly spec: PermSpec;
  readonly input: LmEvaluationInput;
}

async function pairOf(dirA: string, dirB: string, ids: Int32Array): Promise<Pair> {
  const a = await loadLmCheckpoint(dirA);
  const b = (await loadLmCheckpoint(dirB)).tensors;
  const spec = inferSpec([...a.tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), readHfConfig(a.paths.weights)).spec;
  const input = prepareLmEvaluation(a.config, { ids, n: ids.length / T, t: T, source: 'train', description: 'Markov tokens' }, { maskId: MASK_ID });
  return { a, b, spec, input };
}

async function activationPerms(p: Pair): Promise<Record<string, Int32Array>> {
  const which = lmFeatureAxes(p.spec, p.a.config, namePrefix(p.a.tensors, p.a.config, p.a.paths.weights));
  const [ma, mb] = [buildLm(p.a.tensors, p.a.config), buildLm(p.b, p.a.config)];
  try {
    return (await lmActivationMatching(p.spec, ma, mb, p.input, which)).perms;
  } finally {
    ma.dispose();
    mb.dispose();
  }
}

describe('LM straight-through estimator on GPT-2', () => {
  const m = { layers: 2, d: 32, heads: 4, vocab: VOCAB, positions: T };
  const ids = markovTokens(TRAIN, T, VOCAB, 7);
  let pair: Pair;
  before(async () => {
    for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
      const r = await trainTinyGpt2(m, { ids, n: TRAIN, t: T }, { ...TRAINING, seed });
      await writeGpt2Folder(path.join(tmp.path, `gpt2-${name}`), m, r.weights);
    }
    pair = await pairOf(path.join(tmp.path, 'gpt2-a'), path.join(tmp.path, 'gpt2-b'), ids);
  });

  it('lowers the midpoint loss below activation matching', async () => {
    const init = await activationPerms(pair);
    const progress: string[] = [];
    const r = await lmSteMatching(pair.spec, pair.a.tensors, pair.b, pair.a.config, pair.input, init, { ...STE, epochs: 4, onProgress: (p) => progress.push(p.message ?? '') });
    assert.match(progress.at(-1)!, /^STE: step 32 of 32, midpoint loss \d+\.\d\d, /);
    assert.ok(r.checkLoss.result < r.checkLoss.start - 0.01, `midpoint loss ${r.checkLoss.result} not below activation matching's ${r.checkLoss.start}`);
  });

  it('gives pi(B) = A back when B is a permutation of A', async () => {
    const b = applyPermutations(pair.spec, randomPermutations(pair.spec, 5), pair.a.tensors);
    const p = { ...pair, b };
    const r = await lmSteMatching(p.spec, p.a.tensors, b, p.a.config, p.input, await activationPerms(p), { ...STE, epochs: 1 });
    const aligned = applyPermutations(p.spec, r.perms, b);
    for (const [name, t] of p.a.tensors) assert.deepEqual(aligned.get(name)!.data, t.data, `\`${name}\` differs`);
  });

  it('stops when cancelled and returns nothing', async () => {
    const ac = new AbortController();
    let steps = 0;
    const run = lmSteMatching(pair.spec, pair.a.tensors, pair.b, pair.a.config, pair.input, await activationPerms(pair), {
      ...STE, epochs: 4, signal: ac.signal, onProgress: () => { if (++steps === 2) ac.abort(); },
    });
    await assert.rejects(run, /ste matching cancelled/);
    assert.equal(steps, 2);
  });
});

const FAMILIES = [
  {
    name: 'Llama (RoPE, 4 query heads in 2 KV groups)',
    vocab: VOCAB,
    train: async (dir: string, ids: Int32Array, seed: number) => {
      const m = { layers: 2, d: 32, heads: 4, kvHeads: 2, headDim: 8, inter: 48, vocab: VOCAB, positions: T };
      await writeHfFolder(dir, llamaConfig(m), (await trainTinyLlama(m, { ids, n: TRAIN, t: T }, { ...TRAINING, seed })).weights);
    },
  },
  {
    name: 'BERT (masked LM)',
    vocab: VOCAB - 1,
    train: async (dir: string, ids: Int32Array, seed: number) => {
      const m = { layers: 2, d: 32, heads: 4, inter: 64, vocab: VOCAB, positions: T };
      await writeHfFolder(dir, bertConfig(m), (await trainTinyBert(m, { ids, n: TRAIN, t: T }, { ...TRAINING, seed, lr: 1e-2, maskId: MASK_ID })).weights);
    },
  },
];

for (const family of FAMILIES) {
  it(`runs on a trained ${family.name} pair and does no worse than activation matching`, async () => {
    const ids = markovTokens(TRAIN, T, family.vocab, 7);
    const dirs = ['a', 'b'].map((x) => path.join(tmp.path, `${family.name.split(' ')[0]}-${x}`));
    await family.train(dirs[0], ids, 1);
    await family.train(dirs[1], ids, 2);
    const pair = await pairOf(dirs[0], dirs[1], ids);
    const r = await lmSteMatching(pair.spec, pair.a.tensors, pair.b, pair.a.config, pair.input, await activationPerms(pair), { ...STE, epochs: 1 });
    assert.equal(r.stepLoss.length, TRAIN / 16);
    assert.ok(r.stepLoss.every(Number.isFinite));
    assert.ok(r.checkLoss.result <= r.checkLoss.start, `${r.checkLoss.result} above ${r.checkLoss.start}`);
  });
}
