/**
 * Weight matching under the orthogonal symmetry (src/core/symmetry/weightMatching.ts) on the
 * gpt2-tiny (LayerNorm, tied head), llama-tiny-gqa (RMSNorm, RoPE, GQA), mixtral-tiny (experts
 * with a router) and vit-tiny (a patch convolution, CLS token and classifier) fixtures: B = g . fold(A)
 * for a random element g of the generalized group is aligned back to fold(A) to float error; the
 * objective reported after each sweep is the one computed directly from g . B and never
 * decreases; the residual step's cross-correlation and Procrustes objective match a plain float64
 * reference (sums in loops, one-sided Jacobi SVD).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { procrustes, svd } from '../../../../src/core/linalg';
import { matMulABt } from '../../../../src/core/matching/jsMatMul';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { gaussian } from '../../../../src/core/symmetry/orthogonal';
import path from 'node:path';
import { readModelConfig } from '../../../../src/core/families/modelConfig';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { applyTransformerGroup, classifierTransformerLayout, foldNorms, randomTransformerGroupElement, transformerLayout, type TransformerLayout } from '../../../../src/core/symmetry';
import { readTensors } from '../../../../src/engine/families/build';
import { procrustesObjective } from '../../../../src/core/symmetry/mapFitting';
import { orthogonalWeightMatching, prepareOrthogonalWeightMatching, residualCross } from '../../../../src/core/symmetry/weightMatching';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { hfFixture } from '../../helpers/hfFixtures';

const matmul = { abT: matMulABt };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** fold(A) of a fixture (a language model, or the vit-tiny classifier) and B = g . fold(A) for a random g. */
async function foldedPair(fixture: string, seed: number): Promise<{ layout: TransformerLayout; a: TensorMap; b: Map<string, DenseTensor> }> {
  const folded = fixture === 'vit-tiny' ? await foldedVit() : await foldedLm(fixture);
  const b = applyTransformerGroup(folded.tensors, folded.layout, randomTransformerGroupElement(folded.layout, mulberry32(seed)));
  return { layout: folded.layout, a: folded.tensors, b };
}

async function foldedLm(fixture: string) {
  const lm = await loadLmCheckpoint(hfFixture(fixture));
  return foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
}

async function foldedVit() {
  const file = path.join(hfFixture('vit-tiny'), 'model.safetensors');
  const ckpt = await openCheckpoint(file);
  try {
    const weights = await readTensors(ckpt);
    return foldNorms(weights, classifierTransformerLayout(weights, 'vit', readModelConfig(file), 'vit-tiny'));
  } finally {
    await ckpt.close();
  }
}

/** sum over every tensor of <A_t, B_t> in float64 (the tensors the group does not touch add a constant). */
function allDots(a: TensorMap, b: TensorMap): number {
  let acc = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.data.length; i++) acc += x.data[i] * y.data[i];
  }
  return acc;
}

describe('orthogonal weight matching', () => {
  for (const fixture of ['gpt2-tiny', 'llama-tiny-gqa', 'mixtral-tiny', 'vit-tiny'] as const) {
    it(`${fixture}: recovers a random element of the generalized group (g . B' = A' to 1e-4)`, async () => {
      const { layout, a, b } = await foldedPair(fixture, 3);
      const messages: string[] = [];
      const r = await orthogonalWeightMatching(layout, a, b, { maxIter: 100, matmul, onProgress: (p) => messages.push(p.message ?? '') });
      const aligned = applyTransformerGroup(b, layout, r.element);
      let worst = 0;
      for (const [name, t] of a) worst = Math.max(worst, maxDiff(aligned.get(name)!.data, t.data));
      assert.ok(worst < 1e-4, `g . B' differs from A' by up to ${worst} after ${r.objectives.length - 1} sweeps`);
      assert.ok(messages.includes('Weight matching (orthogonal): sweep 1, residual stream'), messages.slice(0, 3).join('; '));
      assert.ok(messages.some((m) => /^Weight matching \(orthogonal\): sweep 2, heads of layer 1 of 2$/.test(m)));
      assert.ok(r.residual.rowMaxMean < 0.9, 'the residual map found is a rotation, not a permutation');
    });
  }

  for (const fixture of ['llama-tiny-gqa', 'mixtral-tiny', 'vit-tiny'] as const) {
    it(`${fixture}: the objective after each sweep is the direct sum <A, g . B> and never decreases`, async () => {
      const { layout, a, b } = await foldedPair(fixture, 9);
      const base = allDots(a, b);
      let previous = -Infinity;
      let sweeps = 0;
      for (let k = 1; k <= 4; k++) {
        const r = await orthogonalWeightMatching(layout, a, b, { maxIter: k, matmul });
        const direct = allDots(a, applyTransformerGroup(b, layout, r.element)) - base;
        const reported = r.objectives[r.objectives.length - 1] - r.objectives[0];
        assert.ok(Math.abs(direct - reported) <= 1e-4 * Math.abs(r.objectives[r.objectives.length - 1]), `after ${k} sweeps: direct gain ${direct}, reported ${reported}`);
        assert.ok(direct >= previous - 1e-6 * Math.abs(base), `sweep ${k}: ${direct} after ${previous}`);
        for (let i = 1; i < r.objectives.length; i++) assert.ok(r.objectives[i] >= r.objectives[i - 1]);
        previous = direct;
        sweeps = r.objectives.length - 1;
      }
      assert.ok(sweeps >= 2, 'the test saw several sweeps');
    });
  }

  it('mixtral-tiny, B a noisy copy: experts move as wholes, the router\'s rows with them, and the objective counts the router', async () => {
    const { layout, a, b } = await foldedPair('mixtral-tiny', 21);
    // Noise ten times the weights (not on the unit norm gains): an assignment of units alone then splits experts.
    const random = mulberry32(22);
    const noisy = new Map([...b].map(([name, t]) => {
      if (t.shape.length < 2) return [name, t];
      const scale = Math.sqrt(t.data.reduce((acc, x) => acc + x * x, 0) / t.data.length);
      return [name, { shape: t.shape, data: t.data.map((x) => x + 10 * scale * gaussian(random)) }];
    }));
    const r = await orthogonalWeightMatching(layout, a, noisy, { maxIter: 100, matmul });
    layout.blocks.forEach((blk, l) => {
      const count = blk.experts!.count;
      const w = blk.mlpWidth / count;
      for (let e = 0; e < count; e++) {
        const expert = new Set(r.element.mlp[l].slice(e * w, (e + 1) * w).map((u) => Math.floor(u / w)));
        assert.equal(expert.size, 1, `layer ${l}: new expert ${e} takes units of experts ${[...expert].join(', ')}`);
      }
    });
    const direct = allDots(a, applyTransformerGroup(noisy, layout, r.element)) - allDots(a, noisy);
    const reported = r.objectives[r.objectives.length - 1] - r.objectives[0];
    assert.ok(Math.abs(direct - reported) <= 1e-4 * Math.abs(r.objectives[r.objectives.length - 1]), `direct gain ${direct}, reported ${reported}`);
    for (let i = 1; i < r.objectives.length; i++) assert.ok(r.objectives[i] >= r.objectives[i - 1]);
  });

  it('gpt2-tiny: started at the element it found (`init`, as the STE projection does) it stays there in one sweep', async () => {
    const { layout, a, b } = await foldedPair('gpt2-tiny', 12);
    const found = await orthogonalWeightMatching(layout, a, b, { maxIter: 100, matmul });
    const again = await orthogonalWeightMatching(layout, a, b, { maxIter: 100, matmul, init: found.element });
    const last = found.objectives[found.objectives.length - 1];
    assert.ok(Math.abs(again.objectives[0] - last) <= 1e-6 * Math.abs(last), `start ${again.objectives[0]}, converged ${last}`);
    assert.equal(again.objectives.length, 2, 'one sweep');
    assert.ok(maxDiff(again.element.residual, found.element.residual) < 1e-6);
  });

  it('stops when cancelled', async () => {
    const { layout, a, b } = await foldedPair('gpt2-tiny', 13);
    const ac = new AbortController();
    let reports = 0;
    await assert.rejects(
      orthogonalWeightMatching(layout, a, b, { maxIter: 100, matmul, signal: ac.signal, onProgress: () => { if (++reports === 3) ac.abort(); } }),
      /cancelled/,
    );
    assert.equal(reports, 3);
  });

  it('the residual step equals a plain float64 reference (cross-correlation in loops, Jacobi SVD)', async () => {
    const { layout, a, b } = await foldedPair('llama-tiny-gqa', 4);
    const d = layout.hidden;
    // The first step: every other map at the identity, so M = sum over stream tensors of X_B^T X_A.
    const ref = new Float64Array(d * d);
    const addRows = (x: DenseTensor, y: DenseTensor) => {
      for (let s = 0; s < x.data.length / d; s++) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) ref[i * d + j] += y.data[s * d + i] * x.data[s * d + j];
    };
    const addColumns = (x: DenseTensor, y: DenseTensor) => {
      const cols = x.shape[1];
      for (let c = 0; c < cols; c++) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) ref[i * d + j] += y.data[i * cols + c] * x.data[j * cols + c];
    };
    for (const [name, x] of a) {
      if (x.shape.length !== 2) continue;
      const y = b.get(name)!;
      // Llama's Linear [out, in]: readers hold the stream on their columns (rows are samples), o/down on their rows.
      if (/o_proj|down_proj/.test(name)) addColumns(x, y);
      else addRows(x, y);
    }
    const identity = Array.from({ length: layout.heads }, (_, h) => h);
    const eye = (n: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    const state = {
      heads: layout.blocks.map(() => identity),
      qk: layout.blocks.map(() => Array.from({ length: layout.kvHeads }, () => eye(layout.headDim))),
      vo: layout.blocks.map(() => Array.from({ length: layout.kvHeads }, () => eye(layout.headDim))),
      mlp: layout.blocks.map((blk) => Array.from({ length: blk.mlpWidth }, (_, i) => i)),
    };
    const m = await residualCross(await prepareOrthogonalWeightMatching(layout, a, b, matmul), state, matmul);
    const scale = Math.max(...Array.from(ref, Math.abs));
    assert.ok(maxDiff(m, ref) <= 1e-5 * scale, `cross-correlation differs by ${maxDiff(m, ref)} (scale ${scale})`);
    const nuclear = svd(ref, d, d).s.reduce((acc, x) => acc + x, 0);
    const objective = procrustesObjective(procrustes(m, d), ref);
    assert.ok(Math.abs(objective - nuclear) <= 1e-6 * nuclear, `Procrustes objective ${objective}, sum of singular values ${nuclear}`);
  });
});
