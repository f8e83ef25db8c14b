/**
 * The LM straight-through estimator over the orthogonal group (src/engine/compute/lmSte.ts,
 * `orthogonalOrbit`; projection = orthogonal weight matching, src/core/symmetry/weightMatching.ts)
 * on two tiny GPT-2s trained here, seeded, apart on the same Markov language: started at
 * orthogonal activation matching it lowers the midpoint loss on the training windows below
 * activation matching's, and the B' it gives still computes B's function; through the align
 * handler (`--method ste --symmetry orthogonal`) it writes B' and A', both checked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applyTransformerGroup, foldNorms, transformerLayout } from '../../../../src/core/symmetry';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { initBackend } from '../../../../src/engine/backend';
import { lmSteRefine, orthogonalOrbit, type LmSteOptions } from '../../../../src/engine/compute/lmSte';
import { orthogonalActivationMatching } from '../../../../src/engine/compute/orthogonalMatching';
import { checkLmReparameterised } from '../../../../src/engine/compute/transformerEquivalence';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { buildLm } from '../../../../src/engine/lm/model';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { markovTokens, trainTinyGpt2, writeGpt2Folder, writeTokensNpy } from '../../helpers/trainGpt2';

const T = 16;
const TRAIN = 128;
const VOCAB = 24;
const STE: Omit<LmSteOptions, 'epochs'> = { batchSize: 16, learningRate: 1e-2, seed: 0, maxIter: 20, matmul: jsMatMul, budgetBytes: 256 * 1024 * 1024 };

let tmp: TmpDir;
const dirs = { a: '', b: '' };
const ids = markovTokens(TRAIN, T, VOCAB, 7);
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-ste-orth-');
  const m = { layers: 2, d: 32, heads: 4, vocab: VOCAB, positions: T };
  for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
    const r = await trainTinyGpt2(m, { ids, n: TRAIN, t: T }, { steps: 80, batch: 16, lr: 2e-2, seed });
    dirs[name] = path.join(tmp.path, `gpt2-${name}`);
    await writeGpt2Folder(dirs[name], m, r.weights);
  }
});
after(() => tmp?.remove());

describe('LM straight-through estimator, orthogonal symmetry (GPT-2)', () => {
  it('lowers the midpoint loss below orthogonal activation matching, and B\' computes B\'s function', async () => {
    const [a, b] = [await loadLmCheckpoint(dirs.a), await loadLmCheckpoint(dirs.b)];
    const [fa, fb] = [a, b].map((x) => foldNorms(x.tensors, transformerLayout(x.tensors, x.config)));
    assert.equal(fa.untied, fb.untied);
    const [configA, configB] = [{ ...a.config, tied: fa.layout.tied }, { ...b.config, tied: fb.layout.tied }];
    const input = prepareLmEvaluation(configA, { ids, n: TRAIN, t: T, source: 'train', description: 'Markov tokens' });
    const [ma, mb] = [buildLm(fa.tensors, configA), buildLm(fb.tensors, configB)];
    const init = await orthogonalActivationMatching(fb.layout, ma, mb, input).finally(() => {
      ma.dispose();
      mb.dispose();
    });
    const progress: string[] = [];
    const opts: LmSteOptions = { ...STE, epochs: 4, onProgress: (p) => progress.push(p.message ?? '') };
    const r = await lmSteRefine(fa.tensors, configA, input, init, orthogonalOrbit(fb.layout, fb.tensors, opts), opts);
    assert.match(progress.at(-1)!, /^STE: step 32 of 32, midpoint loss \d+\.\d\d, /);
    assert.ok(r.checkLoss.result < r.checkLoss.start - 0.01, `midpoint loss ${r.checkLoss.result} not below orthogonal activation matching's ${r.checkLoss.start}`);
    assert.notEqual(r.best, init);
    const bPrime = applyTransformerGroup(fb.tensors, fb.layout, r.best.element);
    const check = checkLmReparameterised(b.tensors, b.config, bPrime, configB, 0).report;
    assert.ok(check.ok, check.message);
  });

  it('align --method ste --symmetry orthogonal writes B\' and A\', both equivalence checks pass', async () => {
    const data = tmp.file('ids.npy');
    writeTokensNpy(data, ids, TRAIN, T);
    const out = tmp.file('aligned');
    const logs: string[] = [];
    const stages = new Set<string>();
    const r = await alignHandler(
      { kind: 'align', a: dirs.a, b: dirs.b, out, method: 'ste', symmetry: 'orthogonal', seed: 0, maxIter: 20, data: { path: data }, ste: { epochs: 1, batchSize: 32, learningRate: 1e-2 } },
      { signal: new AbortController().signal, onProgress: (p) => stages.add(p.stage), log: (m) => logs.push(m) },
    );
    assert.equal(r.method, 'ste');
    assert.equal(r.symmetry, 'orthogonal');
    assert.equal(r.written, true, logs.join('\n'));
    assert.equal(r.equivalence?.ok, true);
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    assert.equal(r.iterations, TRAIN / 32);
    assert.ok(stages.has('ste') && stages.has('activations'), [...stages].join(', '));
    assert.ok(logs.some((l) => /^STE: 4 steps of 32 sequences; midpoint loss on the check windows/.test(l)), logs.join('\n'));
  });
});
