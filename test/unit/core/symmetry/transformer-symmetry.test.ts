/**
 * The generalized symmetry (src/core/symmetry) on the GPT-2, Llama (GQA, RoPE), Qwen2 (q/k/v
 * biases, tied embeddings) and Mixtral (experts, router) fixtures of test/fixtures/hf, through
 * our LM forward pass (which reproduces transformers' logits, lm-fixtures.test.ts): folding
 * keeps the logits, the untied
 * form of a tied model keeps them (and keeping it tied does not), a random element of the group
 * keeps them, and Procrustes recovers a known residual map from weights and from activations.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { procrustes, procrustesFixing } from '../../../../src/core/linalg';
import { mulberry32 } from '../../../../src/core/matching/prng';
import {
  applyTransformerGroup,
  foldedConfigJson,
  foldNorms,
  randomOrthogonal,
  randomOrthogonalFixing,
  randomTransformerGroupElement,
  SymmetryUnsupported,
  transformerLayout,
  type TransformerLayout,
} from '../../../../src/core/symmetry';
import { initBackend } from '../../../../src/engine/backend';
import { loadLmCheckpoint, type LoadedLm } from '../../../../src/engine/lm/checkpoint';
import type { LmConfig } from '../../../../src/engine/lm/config';
import { buildLm } from '../../../../src/engine/lm/model';
import { testBackend } from '../../helpers/backend';
import { hfFixture } from '../../helpers/hfFixtures';

before(async () => {
  await initBackend(testBackend());
});

const FIXTURES = ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'mixtral-tiny'] as const;
const TOLERANCE = 1e-4;

function randomIds(config: LmConfig, seed: number): tf.Tensor2D {
  const random = mulberry32(seed);
  const [n, s] = [3, 16];
  return tf.tensor2d(Int32Array.from({ length: n * s }, () => Math.floor(random() * config.vocab)), [n, s], 'int32');
}

function logits(tensors: TensorMap, config: LmConfig, ids: tf.Tensor2D): Float32Array {
  const model = buildLm(tensors, config);
  try {
    return tf.tidy(() => model.logits(ids).dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

/** Residual-stream activations (every point the forward pass reports) as rows [samples, hidden]. */
function residualRows(tensors: TensorMap, config: LmConfig, ids: tf.Tensor2D): Float64Array {
  const model = buildLm(tensors, config);
  const parts: Float32Array[] = [];
  try {
    tf.tidy(() => {
      model.hidden(ids, { residual: (_, t) => parts.push(Float32Array.from(t.dataSync())) });
    });
  } finally {
    model.dispose();
  }
  return Float64Array.from(parts.flatMap((p) => Array.from(p)));
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** X_A^T X_B for row blocks X [rows, d] (float64). */
function crossCorrelation(xa: ArrayLike<number>, xb: ArrayLike<number>, d: number): Float64Array {
  const m = new Float64Array(d * d);
  for (let r = 0; r < xa.length / d; r++) {
    for (let i = 0; i < d; i++) {
      const a = xa[r * d + i];
      for (let j = 0; j < d; j++) m[i * d + j] += a * xb[r * d + j];
    }
  }
  return m;
}

function alignResidual(m: Float64Array, layout: TransformerLayout): Float64Array {
  const d = layout.hidden;
  return layout.centered ? procrustesFixing(m, d, new Float64Array(d).fill(1 / Math.sqrt(d))) : procrustes(m, d);
}

const loaded = new Map<string, LoadedLm>();
async function load(name: string): Promise<LoadedLm> {
  if (!loaded.has(name)) loaded.set(name, await loadLmCheckpoint(hfFixture(name)));
  return loaded.get(name)!;
}

const verbose = (...xs: unknown[]) => process.env.LM_VERBOSE && console.log(...xs);

for (const name of FIXTURES) {
  describe(`${name}: the generalized symmetry keeps the logits`, () => {
    it('folding the norms keeps the logits; a tied head behind a gain becomes an untied lm_head', async () => {
      const lm = await load(name);
      const layout = transformerLayout(lm.tensors, lm.config);
      const folded = foldNorms(lm.tensors, layout);
      const ids = randomIds(lm.config, 11);
      const base = logits(lm.tensors, lm.config, ids);
      const foldedConfig = { ...lm.config, tied: folded.layout.tied };
      const diff = maxAbsDiff(base, logits(folded.tensors, foldedConfig, ids));
      verbose(name, 'fold', diff);
      assert.ok(diff < TOLERANCE, `folded logits differ by ${diff}`);
      for (const site of layout.blocks.flatMap((b) => [b.attnNorm, b.mlpNorm])) {
        assert.ok(folded.tensors.get(site.gain)!.data.every((g) => g === 1));
        assert.ok(folded.changed.includes(site.gain) && site.readers.every((r) => folded.changed.includes(r.weight)));
      }
      assert.ok(folded.tensors.get(layout.finalNorm.gain)!.data.every((g) => g === 1));
      assert.ok(layout.embeddings.every((e) => !folded.changed.includes(e)), 'embeddings are not changed by folding');
      assert.ok(layout.blocks.every((b) => !folded.changed.includes(b.o.weight) && !folded.changed.includes(b.mlpOut.weight)));
      const raw = { model_type: lm.config.modelType, tie_word_embeddings: lm.config.tied };
      if (lm.config.tied) {
        assert.equal(folded.untied, true);
        assert.deepEqual(folded.added, ['lm_head.weight']);
        assert.equal(foldedConfigJson(raw, folded).tie_word_embeddings, false);
        // The trap: the same weights read back tied (lm_head dropped) compute something else.
        const tiedAgain = new Map(folded.tensors);
        tiedAgain.delete('lm_head.weight');
        const wrong = maxAbsDiff(base, logits(tiedAgain, lm.config, ids));
        verbose(name, 'folded but kept tied', wrong);
        assert.ok(wrong > 100 * TOLERANCE, `kept tied, the logits moved only ${wrong}`);
      } else {
        assert.equal(folded.untied, false);
        assert.deepEqual(folded.added, []);
        assert.ok(folded.changed.includes('lm_head.weight'));
        assert.deepEqual(foldedConfigJson(raw, folded), raw);
      }
      ids.dispose();
    });

    it('a random element (residual R, head permutations, per-head QK and VO maps, MLP permutations) keeps the logits of the folded model', async () => {
      const lm = await load(name);
      const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
      const config = { ...lm.config, tied: folded.layout.tied };
      const ids = randomIds(lm.config, 12);
      const base = logits(lm.tensors, lm.config, ids);
      for (const seed of [1, 2]) {
        const g = randomTransformerGroupElement(folded.layout, mulberry32(seed));
        const moved = applyTransformerGroup(folded.tensors, folded.layout, g);
        const diff = maxAbsDiff(base, logits(moved, config, ids));
        verbose(name, 'group element', seed, diff);
        assert.ok(diff < TOLERANCE, `seed ${seed}: logits differ by ${diff}`);
        // The element really moved the weights.
        const q = folded.layout.blocks[0].q.layer.weight;
        assert.ok(maxDiff(moved.get(q)!.data, folded.tensors.get(q)!.data) > 1e-2);
        assert.ok(g.heads.some((p) => p.some((x, i) => x !== i)), 'the element permutes heads');
        // The head permutation alone keeps the logits too.
        const headsOnly = applyTransformerGroup(folded.tensors, folded.layout, { heads: g.heads });
        assert.ok(maxAbsDiff(base, logits(headsOnly, config, ids)) < TOLERANCE, `seed ${seed}: the head permutation alone moves the logits`);
      }
      ids.dispose();
    });

    it('Procrustes recovers a known residual map, from the stream weights and from the activations', async () => {
      const lm = await load(name);
      const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
      const { layout } = folded;
      const config = { ...lm.config, tied: folded.layout.tied };
      const d = layout.hidden;
      const random = mulberry32(21);
      const r = layout.centered ? randomOrthogonalFixing(new Float64Array(d).fill(1 / Math.sqrt(d)), d, random) : randomOrthogonal(d, random);
      const b = applyTransformerGroup(folded.tensors, layout, { residual: r });
      // Weights: the rows the embeddings write into the stream.
      const rows = (t: TensorMap) => layout.embeddings.flatMap((e) => Array.from((t.get(e) as DenseTensor).data));
      const fromWeights = alignResidual(crossCorrelation(rows(folded.tensors), rows(b), d), layout);
      verbose(name, 'recovered R from weights, max entry error', maxDiff(fromWeights, r));
      assert.ok(maxDiff(fromWeights, r) < 1e-5, `from weights: off by ${maxDiff(fromWeights, r)}`);
      // Activations on random token ids.
      const ids = randomIds(lm.config, 13);
      const fromActs = alignResidual(crossCorrelation(residualRows(folded.tensors, config, ids), residualRows(b, config, ids), d), layout);
      verbose(name, 'recovered R from activations, max entry error', maxDiff(fromActs, r));
      assert.ok(maxDiff(fromActs, r) < 1e-4, `from activations: off by ${maxDiff(fromActs, r)}`);
      // Undoing it (R^T) gives back A' to float error.
      const rt = Float64Array.from({ length: d * d }, (_, idx) => fromWeights[(idx % d) * d + Math.floor(idx / d)]);
      const back = applyTransformerGroup(b, layout, { residual: rt });
      for (const [n, t] of folded.tensors) assert.ok(maxDiff(back.get(n)!.data, t.data) < 1e-4, `${n} not restored`);
      ids.dispose();
    });
  });
}

describe('mixtral-tiny: experts permute as wholes, the router\'s rows with them', () => {
  it('a random element moves whole experts (units within each) and the router rows follow; a permutation splitting an expert is refused', async () => {
    const lm = await load('mixtral-tiny');
    const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
    const block = folded.layout.blocks[0];
    const experts = block.experts!;
    assert.equal(experts.count, 4);
    assert.equal(block.mlpWidth, 4 * 96);
    assert.ok(block.mlpNorm.readers.some((r) => r.weight === experts.router.weight), 'the router reads the MLP norm');
    const g = randomTransformerGroupElement(folded.layout, mulberry32(7));
    const order = Array.from({ length: 4 }, (_, e) => Math.floor(g.mlp[0][e * 96] / 96));
    assert.notDeepEqual(order, [0, 1, 2, 3], 'the element reorders the experts');
    // Only the permutations (no residual map): new router row e is old row order[e].
    const moved = applyTransformerGroup(folded.tensors, folded.layout, { mlp: g.mlp });
    const [router, d] = [folded.tensors.get(experts.router.weight)!, folded.layout.hidden];
    const movedRouter = moved.get(experts.router.weight)!;
    for (let e = 0; e < 4; e++) assert.deepEqual(movedRouter.data.subarray(e * d, (e + 1) * d), router.data.subarray(order[e] * d, (order[e] + 1) * d));
    const ids = randomIds(lm.config, 14);
    assert.ok(maxAbsDiff(logits(lm.tensors, lm.config, ids), logits(moved, lm.config, ids)) < TOLERANCE);
    ids.dispose();
    const split = Array.from({ length: 4 * 96 }, (_, i) => i);
    [split[0], split[96]] = [split[96], split[0]];
    assert.throws(() => applyTransformerGroup(folded.tensors, folded.layout, { mlp: [split, g.mlp[1]] }), (e: Error) => e instanceof SymmetryUnsupported && /splits the units of expert/.test(e.message));
  });
});

describe('refusals (one line each)', () => {
  it('an unfolded model, a GPT-2 residual map that moves the all-ones direction, a Llama QK map that does not commute with RoPE', async () => {
    const gpt2 = await load('gpt2-tiny');
    const layout = transformerLayout(gpt2.tensors, gpt2.config);
    const d = layout.hidden;
    const random = mulberry32(3);
    assert.throws(() => applyTransformerGroup(gpt2.tensors, layout, { residual: randomOrthogonal(d, random) }), (e: Error) => e instanceof SymmetryUnsupported && /fold the norms first/.test(e.message));
    const folded = foldNorms(gpt2.tensors, layout);
    assert.throws(() => applyTransformerGroup(folded.tensors, folded.layout, { residual: randomOrthogonal(d, random) }), /does not fix the all-ones direction/);
    const llama = await load('llama-tiny-gqa');
    const ll = foldNorms(llama.tensors, transformerLayout(llama.tensors, llama.config));
    const general = ll.layout.blocks.map(() => [randomOrthogonal(ll.layout.headDim, random), randomOrthogonal(ll.layout.headDim, random)]);
    assert.throws(() => applyTransformerGroup(ll.tensors, ll.layout, { qk: general }), /does not commute with rotary positions/);
    // Under grouped-query attention a head permutation moves whole groups.
    const { heads, kvHeads } = ll.layout;
    assert.ok(kvHeads > 1 && heads > kvHeads, 'the fixture has grouped-query attention');
    const split = Array.from({ length: heads }, (_, i) => i);
    [split[0], split[heads - 1]] = [split[heads - 1], split[0]];
    assert.throws(() => applyTransformerGroup(ll.tensors, ll.layout, { heads: ll.layout.blocks.map(() => split) }), /splits the query heads of key\/value head/);
    // Without RoPE (GPT-2) any orthogonal per-head QK map is allowed.
    assert.doesNotThrow(() => applyTransformerGroup(folded.tensors, folded.layout, { qk: folded.layout.blocks.map(() => Array.from({ length: 4 }, () => randomOrthogonal(16, random))) }));
    const bert = await loadLmCheckpoint(hfFixture('bert-tiny'));
    assert.throws(() => transformerLayout(bert.tensors, bert.config), /BERT \(post-LN\) has no orthogonal symmetry: its LayerNorm gains scale the residual stream itself/);
  });
});
