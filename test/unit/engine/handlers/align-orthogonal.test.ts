/**
 * `align --symmetry orthogonal` (handlers/alignOrthogonal.ts, compute/orthogonalMatching.ts):
 * B = g . fold(A) for a random element g of the generalized group (orthogonal residual, per-head
 * QK and VO maps, MLP permutations) is aligned back to A' = fold(A) to float error through the
 * handler, A' and B' are written (B' with B's names, A' beside it) and both equivalence checks
 * pass; the Procrustes objective equals the float64 SVD's sum of singular values; the rotary
 * restriction beats every angle of a plain scan; Mixtral (experts and their units permuted, the
 * router's rows with them) and a ViT (on images) are aligned the same way; BERT (post-LN) is
 * refused in one line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as v from 'valibot';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { svd } from '../../../../src/core/linalg';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { mulberry32 } from '../../../../src/core/matching/prng';
import { inferSpec } from '../../../../src/core/permspec';
import { readModelConfig } from '../../../../src/core/families/modelConfig';
import { openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { applyTransformerGroup, classifierTransformerLayout, foldNorms, randomTransformerGroupElement, transformerLayout } from '../../../../src/core/symmetry';
import { readTensors } from '../../../../src/engine/families/build';
import { gaussian } from '../../../../src/core/symmetry/orthogonal';
import { initBackend } from '../../../../src/engine/backend';
import { orthogonalActivationMatching, procrustesObjective, rotaryProcrustes } from '../../../../src/engine/compute/orthogonalMatching';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { alignResultSchema } from '../../../../src/engine/schemas/results';
import { loadLmCheckpoint, readLmWeights } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { buildLm } from '../../../../src/engine/lm/model';
import { hfFixture } from '../../helpers/hfFixtures';
import { randomTokens } from '../../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { writeTokensNpy } from '../../helpers/trainGpt2';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-orthsym-');
});
after(() => tmp.remove());

const ctx = (logs: string[] = []): HandlerContext => ({ signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) });
const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** B = g . fold(A) as a Hugging Face folder (config.json untied when the fold untied the head). */
async function transformedFolder(fixture: string, seed: number): Promise<{ dirB: string; folded: TensorMap; heads: readonly (readonly number[])[] }> {
  const src = hfFixture(fixture);
  const lm = await loadLmCheckpoint(src);
  const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
  const g = randomTransformerGroupElement(folded.layout, mulberry32(seed));
  const b = applyTransformerGroup(folded.tensors, folded.layout, g);
  const dirB = writeFolder(src, `${fixture}-b-${seed}`, b, folded.untied);
  return { dirB: await dirB, folded: folded.tensors, heads: g.heads };
}

/** A Hugging Face folder beside the fixture `src` with these weights (config.json untied if asked). */
async function writeFolder(src: string, name: string, weights: TensorMap, untied: boolean): Promise<string> {
  const dirB = tmp.file(name);
  mkdirSync(dirB);
  const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(dirB, 'config.json'), JSON.stringify(untied ? { ...config, tie_word_embeddings: false } : config));
  if (existsSync(path.join(src, 'tokenizer.json'))) copyFileSync(path.join(src, 'tokenizer.json'), path.join(dirB, 'tokenizer.json'));
  await writeSafetensors(path.join(dirB, 'model.safetensors'), [...weights].map(([n, x]) => ({ name: n, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
  return dirB;
}

/** Aligns B to A (activation matching, orthogonal) and returns the worst difference of B' and A' from fold(A). */
async function alignedGap(src: string, dirB: string, folded: TensorMap, out: string, data: string, logs: string[], includeMatrices = false) {
  const r = await alignHandler({ kind: 'align', a: src, b: dirB, out, method: 'activation', symmetry: 'orthogonal', seed: 0, maxIter: 1, data: { path: data }, ...(includeMatrices ? { includeMatrices } : {}) }, ctx(logs));
  assert.equal(r.written, true, logs.join('\n'));
  const [bPrime, aPrime] = [await readLmWeights(out), await readLmWeights(out.replace(/\.safetensors$/, '.a-folded.safetensors'))];
  let worst = 0;
  for (const [name, t] of folded) worst = Math.max(worst, maxDiff(bPrime.get(name)!.data, t.data), maxDiff(aPrime.get(name)!.data, t.data));
  return { r, worst };
}

async function readClassifier(f: string): Promise<TensorMap> {
  const c = await openCheckpoint(f);
  try {
    return await readTensors(c);
  } finally {
    await c.close();
  }
}

/** vit-tiny's weights, their fold, and B = g . fold(A) as a folder, for a random g. */
async function vitPair(seed: number) {
  const src = hfFixture('vit-tiny');
  const weights = await readClassifier(path.join(src, 'model.safetensors'));
  const config = readModelConfig(path.join(src, 'model.safetensors'));
  const folded = foldNorms(weights, classifierTransformerLayout(weights, 'vit', config, 'vit-tiny'));
  const g = randomTransformerGroupElement(folded.layout, mulberry32(seed));
  const dirB = await writeFolder(src, `vit-tiny-b-${seed}`, applyTransformerGroup(folded.tensors, folded.layout, g), false);
  return { weights, folded, dirB };
}

/** Random-pixel images for vit-tiny (every direction of the stream is seen; smooth images span few, and Procrustes cannot place the rest). */
async function vitImages(): Promise<string> {
  const images = tmp.file('vit-images.safetensors');
  if (existsSync(images)) return images;
  const n = 24;
  const random = mulberry32(17);
  const x = Float32Array.from({ length: n * 3 * 32 * 32 }, () => gaussian(random));
  await writeSafetensors(images, [
    { name: 'x', dtype: 'F32', shape: [n, 3, 32, 32], read: async () => bytes({ shape: [n, 3, 32, 32], data: x }) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(new BigInt64Array(n).map((_, i) => BigInt(i % 10)).buffer) },
  ]);
  return images;
}

function tokenData(fixture: string, vocab: number): string {
  const file = tmp.file(`${fixture}-ids.npy`);
  writeTokensNpy(file, randomTokens(16, 32, vocab, 10), 16, 32);
  return file;
}

describe('align --symmetry orthogonal recovers a random element of the generalized group', () => {
  for (const fixture of ['gpt2-tiny', 'llama-tiny-gqa', 'mixtral-tiny'] as const) {
    it(`${fixture}: B' = A' to float error, A' written beside B', both equivalence checks pass`, async () => {
      const src = hfFixture(fixture);
      const lm = await loadLmCheckpoint(src);
      const { dirB, folded, heads } = await transformedFolder(fixture, 5);
      assert.ok(heads.some((p) => p.some((x, i) => x !== i)), 'the element permutes heads');
      const out = tmp.file(`${fixture}-aligned.safetensors`);
      const logs: string[] = [];
      const r = await alignHandler(
        { kind: 'align', a: src, b: dirB, out, method: 'activation', symmetry: 'orthogonal', seed: 0, maxIter: 1, data: { path: tokenData(fixture, lm.config.vocab) } },
        ctx(logs),
      );
      assert.equal(r.symmetry, 'orthogonal');
      assert.equal(r.written, true, logs.join('\n'));
      assert.equal(r.equivalence?.ok, true);
      assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
      const referenceFolded = out.replace(/\.safetensors$/, '.a-folded.safetensors');
      assert.equal(r.referenceFolded, referenceFolded);
      const [bPrime, aPrime] = [await readLmWeights(out), await readLmWeights(referenceFolded)];
      assert.deepEqual([...bPrime.keys()].sort(), [...folded.keys()].sort(), "B' has B's tensor names");
      // As stored (Mixtral's experts under their own names, not the stacked view the alignment works on).
      const storedNames = async (f: string) => {
        const c = await openCheckpoint(f);
        const names = c.tensors.map((x) => x.name).sort();
        await c.close();
        return names;
      };
      assert.deepEqual(await storedNames(out), await storedNames(path.join(dirB, 'model.safetensors')));
      let worst = 0;
      for (const [name, t] of folded) {
        assert.deepEqual(bPrime.get(name)!.shape, t.shape, name);
        worst = Math.max(worst, maxDiff(bPrime.get(name)!.data, t.data), maxDiff(aPrime.get(name)!.data, t.data));
      }
      assert.ok(worst < 1e-4, `B' and A' differ from fold(A) by up to ${worst}`);
      // The maps found are the group element's, far from permutations (a rotation spreads every row).
      assert.ok(r.orthogonal!.residual.rowMaxMean < 0.9, `residual row max mean ${r.orthogonal!.residual.rowMaxMean}`);
      assert.ok(r.orthogonal!.residual.objectiveAfter > r.orthogonal!.residual.objectiveBefore);
      // Not asked for the panel's pictures (as the CLI never is): none.
      assert.equal(r.orthogonal!.residual.picture, undefined);
      assert.ok([...r.orthogonal!.qk.flat(), ...r.orthogonal!.vo.flat()].every((m) => m.picture === undefined));
    });
  }

  it('gpt2-tiny: B = a random permutation of A (residual, heads, q/k and v/o inside heads, MLP units) is aligned back exactly', async () => {
    const src = hfFixture('gpt2-tiny');
    const lm = await loadLmCheckpoint(src);
    const { spec } = inferSpec([...lm.tensors].map(([name, t]) => ({ name, shape: t.shape })), readHfConfig(lm.paths.weights));
    const perms = randomPermutations(spec, 11);
    assert.ok(Object.keys(perms).some((p) => p.endsWith('.heads') && perms[p].some((x, i) => x !== i)), 'the heads are permuted');
    const dirB = await writeFolder(src, 'gpt2-tiny-permuted', applyPermutations(spec, perms, lm.tensors), false);
    const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config)).tensors;
    const data = tmp.file('gpt2-tiny-permuted-ids.npy');
    writeTokensNpy(data, randomTokens(16, 16, lm.config.vocab, 12), 16, 16);
    const logs: string[] = [];
    const { r, worst } = await alignedGap(src, dirB, folded, tmp.file('gpt2-tiny-permuted-aligned.safetensors'), data, logs, true);
    assert.equal(r.equivalence?.ok, true);
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    assert.ok(worst < 1e-4, `B' and A' differ from fold(A) by up to ${worst}`);
    // The head matching undoes the heads permutation: new head h is B's head p[h] with perm_B[p[h]] = h.
    for (let l = 0; l < lm.config.layers; l++) {
      const p = r.perms[`heads.${l}`];
      const moved = perms[`P_transformer.h.${l}.heads`];
      assert.deepEqual(p.map((x) => moved[x]), p.map((_, h) => h), `layer ${l}`);
    }
    // Per A's head, the matched head through its map gains over B's unmatched head of the same index.
    assert.ok(r.orthogonal!.vo.flat().every((s) => s.objectiveAfter >= s.objectiveBefore - 1e-6));
    // The panel's pictures (asked for): the residual map found is a permutation, one 1 per row of |R|.
    assert.deepEqual(v.safeParse(alignResultSchema, r).issues, undefined, 'the result passes its schema');
    const residual = r.orthogonal!.residual.picture!;
    assert.equal(residual.side, lm.config.hidden);
    for (let i = 0; i < residual.side; i++) {
      const row = [...residual.values.subarray(i * residual.side, (i + 1) * residual.side)];
      assert.ok(Math.abs(Math.max(...row) - 1) < 1e-4 && row.filter((x) => x > 1e-3).length === 1, `residual row ${i}: ${row.map((x) => x.toFixed(3)).join(' ')}`);
    }
    const heads = [...r.orthogonal!.qk.flat(), ...r.orthogonal!.vo.flat()];
    assert.ok(heads.length > 0 && heads.every((m) => m.picture !== undefined && m.picture.side * m.picture.block >= m.size));
  });

  it('the residual Procrustes objective equals the float64 SVD sum of singular values (llama-tiny-gqa, RMSNorm: unconstrained)', async () => {
    const lm = await loadLmCheckpoint(hfFixture('llama-tiny-gqa'));
    const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
    const config = { ...lm.config, tied: folded.layout.tied };
    const b = applyTransformerGroup(folded.tensors, folded.layout, randomTransformerGroupElement(folded.layout, mulberry32(8)));
    const [n, t] = [6, 16];
    const input = prepareLmEvaluation(config, { ids: randomTokens(n, t, config.vocab, 3), n, t, source: 'ids', description: 'random ids' });
    const [ma, mb] = [buildLm(folded.tensors, config), buildLm(b, config)];
    try {
      const r = await orthogonalActivationMatching(folded.layout, ma, mb, input);
      // The same cross-correlation X_B^T X_A, summed here in plain float64 from the stream between
      // blocks, each row as RMSNorm reads it (divided by its root mean square; gains are folded).
      const d = folded.layout.hidden;
      const rows = (m: typeof ma) => {
        const parts: number[][] = [];
        tf.tidy(() => {
          m.hidden(tf.tensor2d(input.input, [n, t], 'int32'), { residual: (l, x) => Number.isInteger(l) && parts.push(Array.from(x.dataSync())) }).dispose();
        });
        const flat = parts.flat();
        for (let s = 0; s < flat.length / d; s++) {
          const row = flat.slice(s * d, (s + 1) * d);
          const rms = Math.sqrt(row.reduce((acc, x) => acc + x * x, 0) / d + 1e-5);
          for (let i = 0; i < d; i++) flat[s * d + i] /= rms;
        }
        return flat;
      };
      const [xa, xb] = [rows(ma), rows(mb)];
      const m = new Float64Array(d * d);
      for (let s = 0; s < xa.length / d; s++) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m[i * d + j] += xb[s * d + i] * xa[s * d + j];
      const nuclear = svd(m, d, d).s.reduce((acc, x) => acc + x, 0);
      assert.ok(Math.abs(r.residual.objectiveAfter - nuclear) <= 1e-4 * nuclear, `objective ${r.residual.objectiveAfter}, sum of singular values ${nuclear}`);
      assert.ok(Math.abs(procrustesObjective(r.element.residual, m) - nuclear) <= 1e-4 * nuclear);
    } finally {
      ma.dispose();
      mb.dispose();
    }
  });

  it('rotary Procrustes: a 2 x 2 rotation per frequency pair, at least as good as every angle of a 3600-step scan', () => {
    const random = mulberry32(4);
    const n = 8;
    const m = Float64Array.from({ length: n * n }, () => gaussian(random));
    const r = rotaryProcrustes(m, n);
    const half = n / 2;
    for (let e = 0; e < half; e++) {
      const f = e + half;
      const value = (c: number, s: number) => c * m[e * n + e] + s * m[e * n + f] - s * m[f * n + e] + c * m[f * n + f];
      const got = value(r[e * n + e], r[e * n + f]);
      for (let k = 0; k < 3600; k++) {
        const a = (2 * Math.PI * k) / 3600;
        assert.ok(got >= value(Math.cos(a), Math.sin(a)) - 1e-12, `pair ${e}: angle ${a} does better`);
      }
    }
  });
});

describe('align --symmetry orthogonal on a ViT (images)', () => {
  it('vit-tiny: B = g . fold(A) is aligned back to A\' on images to float error, both equivalence checks pass', async () => {
    const src = hfFixture('vit-tiny');
    const { weights, folded, dirB } = await vitPair(6);
    const images = await vitImages();
    const out = tmp.file('vit-tiny-aligned.safetensors');
    const logs: string[] = [];
    const r = await alignHandler({ kind: 'align', a: src, b: dirB, out, method: 'activation', symmetry: 'orthogonal', seed: 0, maxIter: 1, data: { path: images } }, ctx(logs));
    assert.equal(r.family, 'vit');
    assert.equal(r.written, true, logs.join('\n'));
    assert.equal(r.equivalence?.ok, true);
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    const [bPrime, aPrime] = [await readClassifier(out), await readClassifier(tmp.file('vit-tiny-aligned.a-folded.safetensors'))];
    assert.deepEqual([...bPrime.keys()].sort(), [...weights.keys()].sort(), "B' has B's tensor names");
    let worst = 0;
    for (const [name, t] of folded.tensors) {
      assert.deepEqual(bPrime.get(name)!.shape, t.shape, name);
      worst = Math.max(worst, maxDiff(bPrime.get(name)!.data, t.data), maxDiff(aPrime.get(name)!.data, t.data));
    }
    assert.ok(worst < 1e-4, `B' and A' differ from fold(A) by up to ${worst}`);
    assert.ok(r.orthogonal!.residual.rowMaxMean < 0.9, `residual row max mean ${r.orthogonal!.residual.rowMaxMean}`);
  });
});

describe('align --symmetry orthogonal --method weight (no data) recovers a random element of the generalized group', () => {
  for (const fixture of ['gpt2-tiny', 'llama-tiny-gqa', 'mixtral-tiny'] as const) {
    it(`${fixture}: B' = A' to float error over several sweeps, both equivalence checks pass, progress per sweep`, async () => {
      const src = hfFixture(fixture);
      const { dirB, folded } = await transformedFolder(fixture, 6);
      const out = tmp.file(`${fixture}-weight-aligned.safetensors`);
      const logs: string[] = [];
      const messages: string[] = [];
      const r = await alignHandler(
        { kind: 'align', a: src, b: dirB, out, method: 'weight', symmetry: 'orthogonal', seed: 0, maxIter: 100 },
        { ...ctx(logs), onProgress: (p) => messages.push(p.message ?? '') },
      );
      assert.equal(r.method, 'weight');
      assert.equal(r.symmetry, 'orthogonal');
      assert.equal(r.written, true, logs.join('\n'));
      assert.equal(r.equivalence?.ok, true);
      assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
      assert.ok(r.iterations >= 2, `${r.iterations} sweeps`);
      assert.ok(r.objectiveAfter > r.objectiveBefore);
      assert.ok(messages.includes('Weight matching (orthogonal): sweep 2, residual stream'), messages.join('; '));
      const [bPrime, aPrime] = [await readLmWeights(out), await readLmWeights(out.replace(/\.safetensors$/, '.a-folded.safetensors'))];
      let worst = 0;
      for (const [name, t] of folded) worst = Math.max(worst, maxDiff(bPrime.get(name)!.data, t.data), maxDiff(aPrime.get(name)!.data, t.data));
      assert.ok(worst < 1e-4, `B' and A' differ from fold(A) by up to ${worst}`);
    });
  }

  it('vit-tiny: B\' = A\' to float error (patch convolution, CLS token, position embeddings, classifier), both equivalence checks pass', async () => {
    const { weights, folded, dirB } = await vitPair(8);
    const out = tmp.file('vit-tiny-weight-aligned.safetensors');
    const logs: string[] = [];
    const r = await alignHandler({ kind: 'align', a: hfFixture('vit-tiny'), b: dirB, out, method: 'weight', symmetry: 'orthogonal', seed: 0, maxIter: 100 }, ctx(logs));
    assert.equal(r.family, 'vit');
    assert.equal(r.written, true, logs.join('\n'));
    assert.equal(r.equivalence?.ok, true);
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    assert.ok(r.objectiveAfter > r.objectiveBefore);
    const [bPrime, aPrime] = [await readClassifier(out), await readClassifier(out.replace(/\.safetensors$/, '.a-folded.safetensors'))];
    assert.deepEqual([...bPrime.keys()].sort(), [...weights.keys()].sort(), "B' has B's tensor names");
    let worst = 0;
    for (const [name, t] of folded.tensors) worst = Math.max(worst, maxDiff(bPrime.get(name)!.data, t.data), maxDiff(aPrime.get(name)!.data, t.data));
    assert.ok(worst < 1e-4, `B' and A' differ from fold(A) by up to ${worst}`);
  });
});

describe('align --symmetry orthogonal refuses what it does not handle, in one line', () => {
  for (const [fixture, pattern] of [['bert-tiny', /BERT \(post-LN\)/]] as const) {
    it(fixture, async () => {
      const src = hfFixture(fixture);
      const data = tokenData(`${fixture}-refusal`, 64);
      await assert.rejects(
        alignHandler({ kind: 'align', a: src, b: src, method: 'activation', symmetry: 'orthogonal', seed: 0, maxIter: 1, data: { path: data } }, ctx()),
        (e: Error) => pattern.test(e.message) && !e.message.includes('\n') && /orthogonal/.test(e.message),
      );
    });
  }
  it('vit-tiny with --method ste (the straight-through estimator is for language models)', async () => {
    const src = hfFixture('vit-tiny');
    await assert.rejects(
      alignHandler({ kind: 'align', a: src, b: src, method: 'ste', symmetry: 'orthogonal', seed: 0, maxIter: 1, data: { path: await vitImages() } }, ctx()),
      (e: Error) => /--method ste/.test(e.message) && /language models/.test(e.message) && /vit/.test(e.message) && !e.message.includes('\n'),
    );
  });
  for (const method of ['activation', 'ste'] as const) {
    it(`${method} without token data`, async () => {
      const src = hfFixture('gpt2-tiny');
      await assert.rejects(
        alignHandler({ kind: 'align', a: src, b: src, method, symmetry: 'orthogonal', seed: 0, maxIter: 1 }, ctx()),
        (e: Error) => /needs data/.test(e.message) && e.message.includes(`--method ${method}`) && !e.message.includes('\n'),
      );
    });
  }
});
