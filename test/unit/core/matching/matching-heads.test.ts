/**
 * Attention heads end to end: the inferred symmetry group of the Hugging Face fixtures (GPT-2,
 * Llama with RoPE and GQA, Qwen2 with q/k/v biases, BERT) keeps their logits; permutations the
 * group forbids change them; weight matching with heads recovers a known group element exactly
 * (every tensor equal to A's) on the fixtures and on random models; its objective agrees with
 * the float64 reference (exhaustive inner permutations per pair of heads).
 * Fixtures: test/fixtures/hf (copied from transformers, see its SOURCES.md).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BlockAxis, PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { similarityMatrix, weightMatching } from '../../../../src/core/matching/weightMatching';
import { jsMatMul } from '../../../../src/core/matching/jsMatMul';
import { initBackend } from '../../../../src/engine/backend';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { buildLm } from '../../../../src/engine/lm/model';
import { hfFixture } from '../../helpers/hfFixtures';
import { bertStateDict, gpt2StateDict, llamaStateDict, shapesOf, toTensorMap } from '../../helpers/stateDicts';
import { bertForward, gpt2Forward, llamaForward } from '../../helpers/referenceForward';
import { referenceObjective, referenceWeightMatching } from '../../helpers/referenceMatching';

before(async () => {
  await initBackend('wasm');
});

async function referenceLogits(dir: string): Promise<{ ids: Int32Array; logits: Float32Array; shape: number[] }> {
  const ckpt = await openCheckpoint(path.join(dir, 'reference_logits.safetensors'));
  try {
    return { ids: Int32Array.from(await ckpt.readFloat32('input_ids')), logits: await ckpt.readFloat32('logits'), shape: [...ckpt.get('logits')!.shape] };
  } finally {
    await ckpt.close();
  }
}

/** Largest |logit difference| of weights `w` from transformers' logits, relative to the logits' scale. */
async function logitsError(dir: string, w: TensorMap): Promise<number> {
  const ref = await referenceLogits(dir);
  const lm = await loadLmCheckpoint(dir);
  const model = buildLm(w, lm.config, lm.paths.weights);
  try {
    const [n, s] = ref.shape;
    const got = tf.tidy(() => model.logits(tf.tensor2d(ref.ids, [n, s], 'int32')).dataSync());
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref.logits[i]));
    return worst / Math.max(1, ref.logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
  } finally {
    model.dispose();
  }
}

function assertSameTensors(got: TensorMap, want: TensorMap, what: string): void {
  for (const [name, t] of want) {
    const g = got.get(name)!;
    assert.deepEqual(Array.from(g.data), Array.from(t.data), `${what}: tensor \`${name}\` differs`);
  }
}

/** A spec identical to `spec` but with block axes of `tensors` replaced by `entry`. */
function withAxis(spec: PermSpec, changes: Record<string, PermSpec['axes'][string]>, perms: Record<string, number>, blocks: Record<string, number>): PermSpec {
  return { perms: { ...spec.perms, ...perms }, axes: { ...spec.axes, ...changes }, blocks: { ...spec.blocks, ...blocks } };
}

const FIXTURES = ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'bert-tiny'] as const;

describe('heads on the Hugging Face fixtures', () => {
  for (const name of FIXTURES) {
    it(`${name}: random elements of the inferred group keep transformers' logits to 1e-4`, async () => {
      const dir = hfFixture(name);
      const lm = await loadLmCheckpoint(dir);
      const inferred = inferSpec([...lm.tensors].map(([n, t]) => ({ name: n, shape: t.shape })), readHfConfig(lm.paths.weights));
      const spec = inferred.spec;
      assert.ok(Object.keys(spec.perms).some((p) => p.endsWith('.heads')), 'heads are permuted');
      assert.ok(Object.keys(spec.perms).some((p) => p.endsWith('.vo')), 'v/o dimensions are permuted');
      if (name.startsWith('llama') || name.startsWith('qwen')) {
        assert.ok(Object.keys(spec.perms).some((p) => p.endsWith('.kv_heads')), 'KV groups are permuted');
        assert.ok(!Object.keys(spec.perms).some((p) => p.endsWith('.qk')), 'no q/k inner permutation under RoPE');
        for (const [t, axes] of Object.entries(spec.axes)) {
          if (!/[qk]_(proj|norm)/.test(t)) continue;
          for (const a of axes) if (a && typeof a !== 'string') for (const part of a.parts) assert.equal(part.perms[part.perms.length - 1], null, t);
        }
      }
      assert.ok((await logitsError(dir, lm.tensors)) < 1e-4, 'the unpermuted model matches');
      for (const seed of [1, 2]) {
        const perms = randomPermutations(spec, seed);
        const err = await logitsError(dir, applyPermutations(spec, perms, lm.tensors));
        assert.ok(err < 1e-4, `seed ${seed}: logits differ by ${err} (relative)`);
      }
    });
  }

  it('permutations outside the group change the logits (the check has teeth)', async () => {
    // Llama: permuting the dimensions inside a head of q and k jointly would be a symmetry
    // without rotary embeddings; with RoPE it is not.
    {
      const dir = hfFixture('llama-tiny-gqa');
      const lm = await loadLmCheckpoint(dir);
      const spec = inferSpec([...lm.tensors].map(([n, t]) => ({ name: n, shape: t.shape })), readHfConfig(lm.paths.weights)).spec;
      const L = 'model.layers.0.self_attn';
      const q = spec.axes[`${L}.q_proj.weight`][0] as BlockAxis;
      const k = spec.axes[`${L}.k_proj.weight`][0] as BlockAxis;
      // One joint inner permutation of the head dimensions of q and k, per KV group (each query head
      // of a group uses its group's): q.k is unchanged, but the rotary pairs are broken.
      const forbidden = withAxis(spec, {
        [`${L}.q_proj.weight`]: [{ parts: [{ split: [...q.parts[0].split], perms: [q.parts[0].perms[0], q.parts[0].perms[1], 'X_qk'] }] }, 'P_residual'],
        [`${L}.k_proj.weight`]: [{ parts: [{ split: [...k.parts[0].split], perms: [k.parts[0].perms[0], 'X_qk'] }] }, 'P_residual'],
      }, { X_qk: 2 * 16 }, { X_qk: 2 });
      const perms = { ...randomPermutations(spec, 3), X_qk: randomPermutations(forbidden, 3).X_qk };
      assert.ok((await logitsError(dir, applyPermutations(spec, perms, lm.tensors))) < 1e-4, 'the allowed part alone keeps the logits');
      const err = await logitsError(dir, applyPermutations(forbidden, perms, lm.tensors));
      assert.ok(err > 1e-3, `a q/k inner permutation under RoPE must change the logits (${err})`);
    }
    // GPT-2: q's head dimensions permuted without k's.
    {
      const dir = hfFixture('gpt2-tiny');
      const lm = await loadLmCheckpoint(dir);
      const spec = inferSpec([...lm.tensors].map(([n, t]) => ({ name: n, shape: t.shape })), readHfConfig(lm.paths.weights)).spec;
      const t = 'transformer.h.0.attn.c_attn';
      const cattn = spec.axes[`${t}.weight`][1] as BlockAxis;
      const parts = cattn.parts.map((p, i) => (i === 0 ? { split: p.split, perms: [p.perms[0], 'X_q'] } : p));
      const forbidden = withAxis(spec, { [`${t}.weight`]: ['P_residual', { parts }], [`${t}.bias`]: [{ parts }] }, { X_q: 64 }, { X_q: 4 });
      const perms = { ...randomPermutations(spec, 4), X_q: randomPermutations(forbidden, 4).X_q };
      const allowed = await logitsError(dir, applyPermutations(spec, perms, lm.tensors));
      const err = await logitsError(dir, applyPermutations(forbidden, perms, lm.tensors));
      // The tiny trained GPT-2's attention is nearly uniform, so the change is small, but far above rounding.
      assert.ok(err > 2e-4 && err > 100 * allowed, `q's head dimensions without k's must change the logits (${err}; a group element: ${allowed})`);
    }
  });

  for (const name of FIXTURES) {
    it(`${name}: weight matching recovers a random group element exactly, and π(B) keeps B's logits`, async () => {
      const dir = hfFixture(name);
      const lm = await loadLmCheckpoint(dir);
      const spec = inferSpec([...lm.tensors].map(([n, t]) => ({ name: n, shape: t.shape })), readHfConfig(lm.paths.weights)).spec;
      const a = lm.tensors;
      const b = applyPermutations(spec, randomPermutations(spec, 11), a);
      const r = await weightMatching(spec, a, b, { seed: 0, maxIter: 50, matmul: jsMatMul });
      const aligned = applyPermutations(spec, r.perms, b);
      assertSameTensors(aligned, a, name);
      assert.ok((await logitsError(dir, aligned)) < 1e-4);
    });
  }
});

describe('heads on random models', () => {
  const cases = [
    { name: 'gpt2', tensors: gpt2StateDict({ layers: 2, dModel: 16, vocab: 11, positions: 8, seed: 71 }), hf: { heads: 4 }, forward: (w: TensorMap) => gpt2Forward(w, [3, 1, 4, 1, 5], 2, 4) },
    { name: 'llama (GQA, 2 KV groups)', tensors: llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 11, seed: 72 }), hf: { heads: 4, kvHeads: 2 }, forward: (w: TensorMap) => llamaForward(w, [2, 7, 1, 8], 2, 4, 2) },
    { name: 'llama (multi-query: 1 KV head, 4 query heads)', tensors: llamaStateDict({ layers: 1, dModel: 16, heads: 4, kvHeads: 1, intermediate: 12, vocab: 11, seed: 74 }), hf: { heads: 4, kvHeads: 1 }, forward: (w: TensorMap) => llamaForward(w, [2, 7, 1, 8], 1, 4, 1) },
    { name: 'bert', tensors: bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 11, positions: 8, classifier: 3, seed: 73 }), hf: { heads: 4 }, forward: (w: TensorMap) => bertForward(w, [1, 5, 9, 2], 2, 4) },
  ];
  for (const c of cases) {
    it(`${c.name}: residual + MLP + heads (+ inner, + groups) recovered exactly; the function is kept`, async () => {
      const spec = inferSpec(shapesOf(c.tensors), c.hf).spec;
      const a = toTensorMap(c.tensors);
      for (const seed of [5, 6]) {
        const b = applyPermutations(spec, randomPermutations(spec, seed), a);
        const r = await weightMatching(spec, a, b, { seed: 1, maxIter: 50, matmul: jsMatMul });
        const aligned = applyPermutations(spec, r.perms, b);
        assertSameTensors(aligned, a, `${c.name} seed ${seed}`);
        // The heatmaps: after alignment each head of A is most similar to the same head of π(B).
        const heads = Object.keys(spec.perms).filter((p) => /\.(kv_)?heads$/.test(p) && !(spec.blocks?.[p] ?? 0));
        assert.ok(heads.length > 0);
        for (const p of heads) {
          const n = spec.perms[p];
          const m = similarityMatrix(spec, a, b, r.perms, p);
          assert.equal(m.length, n * n);
          for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (j !== i) assert.ok(m[i * n + i] > m[i * n + j], `${p}: head ${i}`);
        }
        const vo = Object.keys(spec.perms).find((p) => p.endsWith('.vo'))!;
        assert.equal(similarityMatrix(spec, a, b, r.perms, vo).length, spec.perms[vo] ** 2);
        const y0 = c.forward(a);
        const y1 = c.forward(aligned);
        for (let i = 0; i < y0.length; i++) assert.ok(Math.abs(y0[i] - y1[i]) < 1e-9 * Math.max(1, Math.abs(y0[i])));
      }
    });
  }

  it('objective agrees with the float64 reference (exhaustive inner permutations per pair of heads)', async () => {
    // Independent models: the descent has something to decide. Heads of 3 dimensions, 2 query
    // heads per KV group keep the reference's exhaustive search small.
    const pairs = [
      { spec: inferSpec(shapesOf(gpt2StateDict({ layers: 1, dModel: 12, vocab: 7, positions: 5, seed: 81 })), { heads: 4 }).spec, a: gpt2StateDict({ layers: 1, dModel: 12, vocab: 7, positions: 5, seed: 81 }), b: gpt2StateDict({ layers: 1, dModel: 12, vocab: 7, positions: 5, seed: 82 }) },
      { spec: inferSpec(shapesOf(llamaStateDict({ layers: 1, dModel: 12, heads: 4, kvHeads: 2, intermediate: 10, vocab: 7, seed: 83 })), { heads: 4, kvHeads: 2 }).spec, a: llamaStateDict({ layers: 1, dModel: 12, heads: 4, kvHeads: 2, intermediate: 10, vocab: 7, seed: 83 }), b: llamaStateDict({ layers: 1, dModel: 12, heads: 4, kvHeads: 2, intermediate: 10, vocab: 7, seed: 84 }) },
    ];
    for (const { spec, a, b } of pairs) {
      const ta = toTensorMap(a);
      const tb = toTensorMap(b);
      for (const seed of [0, 1, 2]) {
        const ref = referenceWeightMatching(spec, ta, tb, { seed, maxIter: 30 });
        const got = await weightMatching(spec, ta, tb, { seed, maxIter: 30, matmul: jsMatMul });
        const gotObjective = referenceObjective(spec, ta, tb, got.perms);
        assert.ok(Math.abs(gotObjective - ref.objective) <= 1e-4 * Math.abs(ref.objective), `seed ${seed}: engine ${gotObjective}, reference ${ref.objective}`);
        assert.ok(Math.abs(got.objectiveAfter - gotObjective) <= 1e-4 * Math.abs(gotObjective));
        assert.ok(got.objectiveAfter >= got.objectiveBefore);
      }
    }
  });
});
