/**
 * Transformer forward passes built from the weights' shapes (no config.json: core/families/lmShapes.ts
 * and each family's `lmConfigFromShapes`, run by the LM passes of src/engine/lm/): GPT-2, Llama and BERT against
 * float64 plain-TS forward passes with the same meaning as test/unit/core/permspec/specPreserve.test.ts's
 * references (restated here: a test file cannot import another without running it); the
 * equivalence check passing under a random permutation of the inferred spec and failing, with
 * its cause, under a spec that misses an axis; head-count resolution; and an end-to-end align of
 * two GPT-2 checkpoints through the real worker bundle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { encodeFromFloat32, writeSafetensors } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { testBackend } from '../../helpers/backend';
import { EngineClient } from '../../../../src/engine/client';
import { ModelError } from '../../../../src/engine/compute/modelErrors';
import { resolveHeads, transformerOptions, type TransformerOptions } from '../../../../src/core/families/lmShapes';
import { coreFamily, detectFamily } from '../../../../src/core/families/registry';
import { checkLmEquivalence, tokenBatch } from '../../../../src/engine/compute/transformerEquivalence';
import { buildLm, type LmModel } from '../../../../src/engine/lm/model';
import type { LmConfig } from '../../../../src/engine/lm/config';
import { bertStateDict, gpt2StateDict, llamaStateDict, seededRandom, shapesOf, toTensorMap, type StateTensor } from '../../helpers/stateDicts';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { bertForward as bertReference, gpt2Forward as gpt2Reference, llamaForward as llamaReference, type W } from '../../helpers/referenceForward';

before(async () => {
  await initBackend(testBackend());
});

// ------------------------------------------------------------------ helpers

/** The family's LmConfig from the weights' shapes and model-config keys, as the equivalence check builds it without config.json. */
function shapesConfig(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const family = detectFamily([...tensors].map(([name, t]) => ({ name, shape: t.shape })))!;
  return coreFamily(family.id).lm!.fromShapes(tensors, opts);
}

function buildTransformer(tensors: TensorMap, opts: TransformerOptions = {}): LmModel {
  return buildLm(tensors, shapesConfig(tensors, opts));
}

/** Runs the tfjs forward on seeded token ids and the reference on each sequence; returns the largest relative difference. */
function compareWithReference(sd: StateTensor[], opts: TransformerOptions, n: number, s: number, reference: (w: W, tokens: number[]) => Float64Array): number {
  const model = buildTransformer(toTensorMap(sd), opts);
  const batch = tokenBatch(model.config.vocab, n, s, 3);
  try {
    const ids = Array.from(batch.x.dataSync());
    const got = tf.tidy(() => model.output(batch.x as tf.Tensor2D).dataSync());
    const w = new Map(sd.map((t) => [t.name, t]));
    const want: number[] = [];
    for (let i = 0; i < n; i++) want.push(...reference(w, ids.slice(i * s, (i + 1) * s)));
    assert.equal(got.length, want.length, 'output size');
    const scale = Math.max(...want.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
    return worst;
  } finally {
    batch.x.dispose();
    model.dispose();
  }
}

function permutedCheck(sd: StateTensor[], config: Record<string, unknown>, spec?: PermSpec, seed = 5) {
  const tensors: TensorMap = toTensorMap(sd);
  const inferred = inferSpec(shapesOf(sd), { heads: config.heads as number | undefined, kvHeads: config.kvHeads as number | undefined }).spec;
  const perms = randomPermutations(inferred, seed);
  return checkLmEquivalence(tensors, applyPermutations(spec ?? inferred, perms, tensors), shapesConfig(tensors, transformerOptions(config as never)), 0, { spec: spec ?? inferred, perms });
}

// ------------------------------------------------------------------ tests

describe('transformer forward passes match the plain-TS references', () => {
  it('GPT-2 (Conv1D [in, out], causal attention, tanh GELU, explicit lm_head)', () => {
    const sd = gpt2StateDict({ layers: 2, dModel: 16, vocab: 11, positions: 8, seed: 19, maskBuffers: true });
    const rel = compareWithReference(sd, { heads: 4 }, 3, 6, (w, t) => gpt2Reference(w, t, 2, 4));
    assert.ok(rel < 1e-5, `relative difference ${rel}`);
  });
  it('GPT-2 with the tied lm_head left out of the file', () => {
    const sd = gpt2StateDict({ layers: 1, dModel: 8, vocab: 9, positions: 6, seed: 22, lmHead: false });
    const model = buildTransformer(toTensorMap(sd), { heads: 2 });
    assert.match(model.description, /tied `transformer\.wte\.weight`/);
    model.dispose();
    const rel = compareWithReference(sd, { heads: 2 }, 2, 6, (w, t) => gpt2Reference(w, t, 1, 2));
    assert.ok(rel < 1e-5, `relative difference ${rel}`);
  });
  it('Llama (RMSNorm, rotary, grouped-query attention, SwiGLU)', () => {
    const sd = llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 11, seed: 20 });
    const model = buildTransformer(toTensorMap(sd), { heads: 4 });
    assert.equal(model.config.kvHeads, 2, 'key/value heads from k_proj width / head_dim');
    model.dispose();
    const rel = compareWithReference(sd, { heads: 4 }, 2, 7, (w, t) => llamaReference(w, t, 2, 4, 2));
    assert.ok(rel < 1e-5, `relative difference ${rel}`);
  });
  it('BERT (post-LN, pooler, sequence classifier)', () => {
    const sd = bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 11, positions: 8, classifier: 3, seed: 21 });
    // The reference uses tanh GELU and eps 1e-5; Hugging Face BERT's defaults (exact, 1e-12) are given explicitly here.
    const rel = compareWithReference(sd, { heads: 4, gelu: 'tanh', eps: 1e-5 }, 3, 5, (w, t) => bertReference(w, t, 2, 4));
    assert.ok(rel < 1e-5, `relative difference ${rel}`);
  });
  it('a wrong head count changes the function (the references have teeth)', () => {
    const sd = gpt2StateDict({ layers: 1, dModel: 16, vocab: 11, positions: 8, seed: 23 });
    const rel = compareWithReference(sd, { heads: 2 }, 2, 6, (w, t) => gpt2Reference(w, t, 1, 4));
    assert.ok(rel > 1e-3, `relative difference ${rel}`);
  });
});

describe('transformer equivalence check', () => {
  const cases: [string, StateTensor[], Record<string, unknown>][] = [
    ['gpt2', gpt2StateDict({ layers: 2, dModel: 16, vocab: 13, positions: 8, seed: 31, maskBuffers: true }), { heads: 4 }],
    ['gpt2 (tied head)', gpt2StateDict({ layers: 1, dModel: 16, vocab: 13, positions: 8, seed: 32, lmHead: false }), { heads: 2 }],
    ['llama', llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 13, seed: 33 }), { heads: 4 }],
    ['llama (rotary buffers give head_dim)', llamaStateDict({ layers: 1, dModel: 16, heads: 4, kvHeads: 1, intermediate: 12, vocab: 13, seed: 34, rotaryBuffers: true }), {}],
    ['bert classifier', bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 13, positions: 8, classifier: 3, seed: 35 }), { heads: 4 }],
    ['bert headless (hidden states)', bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 13, positions: 8, pooler: false, seed: 36 }), { heads: 2 }],
  ];
  for (const [name, sd, config] of cases) {
    it(`${name}: π(B) under a random permutation of the inferred spec computes the same function`, () => {
      const r = permutedCheck(sd, config);
      assert.equal(r.report.ok, true, r.report.message);
      assert.equal(r.report.batch, 'random');
      assert.ok(r.report.relDiff <= 1e-4, `relDiff ${r.report.relDiff}`);
      assert.ok(r.report.relDiff < 1e-5, `float rounding only: ${r.report.relDiff}`);
    });
  }

  it('variants: Llama with q/k/v biases and per-head q/k norms (Qwen2/3), BERT with a tied masked-LM head', () => {
    const rand = seededRandom(61);
    const extra = (name: string, shape: number[], lo = -0.5, hi = 0.5): StateTensor => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * rand()) });
    const llama = llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 13, seed: 62 });
    for (let l = 0; l < 2; l++) {
      const a = `model.layers.${l}.self_attn`;
      llama.push(extra(`${a}.q_proj.bias`, [16]), extra(`${a}.k_proj.bias`, [8]), extra(`${a}.v_proj.bias`, [8]), extra(`${a}.q_norm.weight`, [4], 0.8, 1.2), extra(`${a}.k_norm.weight`, [4], 0.8, 1.2));
    }
    const qwen = buildTransformer(toTensorMap(llama), {});
    assert.match(qwen.description, /4 heads \(2 key\/value\) of 4 \(head_dim 4 from `model\.layers\.0\.self_attn\.q_norm\.weight`\)/);
    qwen.dispose();
    const rl = permutedCheck(llama, {});
    assert.equal(rl.report.ok, true, rl.report.message);

    const bert = bertStateDict({ layers: 1, dModel: 16, intermediate: 24, vocab: 13, positions: 8, pooler: false, seed: 63 });
    bert.push(extra('cls.predictions.bias', [13]), extra('cls.predictions.transform.dense.weight', [16, 16]), extra('cls.predictions.transform.dense.bias', [16]));
    bert.push(extra('cls.predictions.transform.LayerNorm.weight', [16], 0.8, 1.2), extra('cls.predictions.transform.LayerNorm.bias', [16]));
    const mlm = buildTransformer(toTensorMap(bert), { heads: 2 });
    assert.match(mlm.description, /masked-LM logits through the tied `bert\.embeddings\.word_embeddings\.weight`/);
    mlm.dispose();
    const rb = permutedCheck(bert, { heads: 2 });
    assert.equal(rb.report.ok, true, rb.report.message);
  });

  it('bert headless: the hidden states do move with the stream permutation (the gather is needed)', () => {
    const sd = bertStateDict({ layers: 1, dModel: 16, intermediate: 24, vocab: 13, positions: 8, pooler: false, seed: 37 });
    const tensors = toTensorMap(sd);
    const spec = inferSpec(shapesOf(sd), { heads: 2 }).spec;
    const piB = applyPermutations(spec, randomPermutations(spec, 5), tensors);
    const b = buildTransformer(tensors, { heads: 2 });
    const p = buildTransformer(piB, { heads: 2 });
    const batch = tokenBatch(13, 2, 4, 1);
    try {
      assert.match(b.description, /output: the final hidden states/);
      assert.deepEqual(b.outputAxis, { tensor: 'bert.encoder.layer.0.output.LayerNorm.weight', axis: 0 });
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(b.output(batch.x as tf.Tensor2D), p.output(batch.x as tf.Tensor2D)))).dataSync()[0]);
      assert.ok(diff > 1e-2, `unaligned hidden states differ (${diff})`);
    } finally {
      b.dispose();
      p.dispose();
      batch.x.dispose();
    }
  });

  it('fails, naming the likely cause, when the spec misses an axis', () => {
    const variants: [string, StateTensor[], Record<string, unknown>, string][] = [
      ['gpt2', gpt2StateDict({ layers: 2, dModel: 16, vocab: 13, positions: 8, seed: 41 }), { heads: 4 }, 'transformer.h.1.mlp.c_proj.weight'],
      ['llama', llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 13, seed: 42 }), { heads: 4 }, 'model.layers.0.self_attn.o_proj.weight'],
      ['bert', bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 13, positions: 8, classifier: 3, seed: 43 }), { heads: 4 }, 'bert.encoder.layer.1.attention.output.LayerNorm.weight'],
    ];
    for (const [name, sd, config, victim] of variants) {
      const spec = inferSpec(shapesOf(sd), { heads: config.heads as number }).spec;
      // The victim keeps its place in the stream: one axis that should follow P_residual (or the mlp) does not.
      const axes = spec.axes[victim];
      const first = axes.findIndex((a) => a !== null);
      const wrong: PermSpec = { perms: spec.perms, axes: { ...spec.axes, [victim]: axes.map((a, i) => (i === first ? null : a)) } };
      const r = permutedCheck(sd, config, wrong);
      assert.equal(r.report.ok, false, `${name}: a spec missing an axis of \`${victim}\` must fail`);
      assert.ok(r.report.relDiff > 1e-3, `${name}: relDiff ${r.report.relDiff}`);
      assert.match(r.report.message ?? '', /different function than B/);
      assert.match(r.report.message ?? '', /the residual stream, attention heads or a norm the spec misses/);
    }
  });
});

describe('transformer model config and head counts', () => {
  it('reads heads from the config, else a tensor showing head_dim, else an unambiguous convention', () => {
    assert.deepEqual(resolveHeads('gpt2', [64], 768, { heads: 12 }), { heads: 12, headDim: 64, source: 'model config' });
    assert.equal(resolveHeads('gpt2', [64], 768, {}).heads, 12);
    assert.equal(resolveHeads('bert', [64], 128, {}).heads, 2);
    assert.equal(resolveHeads('llama', [64, 128], 2048 + 64, {}).heads, 33, 'divisible by 64 only');
    assert.equal(resolveHeads('llama', [64, 128], 4096, {}, { headDim: 128, tensor: 'inv_freq' }).heads, 32);
    assert.throws(() => resolveHeads('llama', [64, 128], 4096, {}), (e: unknown) => e instanceof ModelError && e.kind === 'Unsupported' && /64 or 128 both fit.*"heads"/.test(e.message));
    assert.throws(() => resolveHeads('gpt2', [64], 16, {}), (e: unknown) => e instanceof ModelError && e.kind === 'Unsupported' && /neither a multiple of 64/.test(e.message));
    assert.throws(() => resolveHeads('gpt2', [64], 16, { heads: 3 }), (e: unknown) => e instanceof ModelError && e.kind === 'ConfigInvalid');
  });
  it('validates the transformer keys of a model config', () => {
    assert.deepEqual(transformerOptions({ family: 'transformer', heads: 4, gelu: 'exact' } as never), { heads: 4, kvHeads: undefined, eps: undefined, gelu: 'exact', ropeTheta: undefined });
    assert.throws(() => transformerOptions({ heads: 2.5 } as never), /heads must be a positive integer/);
    assert.throws(() => transformerOptions({ gelu: 'fast' } as never), /gelu must be "exact" or "tanh"/);
  });
  it('refuses a kvHeads that contradicts k_proj', () => {
    const sd = llamaStateDict({ layers: 1, dModel: 16, heads: 4, kvHeads: 2, intermediate: 12, vocab: 11, seed: 44 });
    assert.throws(() => buildTransformer(toTensorMap(sd), { heads: 4, kvHeads: 4 }), (e: unknown) => e instanceof ModelError && e.kind === 'ConfigInvalid');
  });
});

describe('align through the worker checks transformer equivalence', () => {
  const root = path.join(__dirname, '..', '..', '..', '..');
  const workerScript = path.join(root, 'dist', 'worker.js');
  let tmp: TmpDir;
  let client: EngineClient | undefined;
  const logs: string[] = [];

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
    assert.ok(existsSync(workerScript), 'the build must produce dist/worker.js');
    tmp = await makeTmpDir('rebasin-transformer-');
    client = EngineClient.start({ backend: 'auto', workers: 1, workerScript, log: (l) => logs.push(l) });
  });
  after(async () => {
    await client?.dispose();
    await tmp?.remove();
  });

  const write = (file: string, sd: StateTensor[]) =>
    writeSafetensors(file, sd.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })), { metadata: { source: 'transformer test' } });

  it('two tiny GPT-2 checkpoints: equivalence ok, with the forward pass described in the log', async () => {
    const a = tmp.file('a.safetensors');
    const b = tmp.file('b.safetensors');
    await write(a, gpt2StateDict({ layers: 2, dModel: 16, vocab: 13, positions: 8, seed: 51 }));
    await write(b, gpt2StateDict({ layers: 2, dModel: 16, vocab: 13, positions: 8, seed: 52 }));
    writeFileSync(`${a}.rebasin.json`, JSON.stringify({ family: 'transformer', heads: 4 }));
    const r = await client!.request({ kind: 'align', a, b, out: tmp.file('b.aligned.safetensors'), method: 'weight', seed: 0, maxIter: 20 });
    assert.equal(r.family, 'transformer');
    assert.ok(Object.values(r.perms).some((p) => p.some((v, i) => v !== i)), 'alignment moved some units');
    assert.ok(r.equivalence, 'an equivalence report is returned');
    assert.equal(r.equivalence.ok, true, r.equivalence.message);
    assert.equal(r.equivalence.batch, 'random');
    assert.ok(r.equivalence.relDiff <= 1e-4);
    assert.ok(logs.some((l) => /equivalence: gpt2: 2 layers, width 16, 4 heads of 4 \(model config\)/.test(l)), logs.join('\n'));
    assert.ok(!logs.some((l) => /equivalence check skipped/.test(l)), logs.join('\n'));
  });

  it('without a head count the spec cannot place the heads: one line saying what to add', async () => {
    const a = tmp.file('c.safetensors');
    const b = tmp.file('d.safetensors');
    await write(a, gpt2StateDict({ layers: 1, dModel: 16, vocab: 13, positions: 8, seed: 53 }));
    await write(b, gpt2StateDict({ layers: 1, dModel: 16, vocab: 13, positions: 8, seed: 54 }));
    await assert.rejects(client!.request({ kind: 'align', a, b, method: 'weight', seed: 0, maxIter: 20 }), /cannot tell the number of attention heads.*add "n_head".*"heads"/);
  });

  it('the --model file gives the head count to spec inference too: heads are permuted', async () => {
    const a = tmp.file('e.safetensors');
    const b = tmp.file('f.safetensors');
    const model = tmp.file('gpt2-model.json');
    await write(a, gpt2StateDict({ layers: 1, dModel: 16, vocab: 13, positions: 8, seed: 55 }));
    await write(b, gpt2StateDict({ layers: 1, dModel: 16, vocab: 13, positions: 8, seed: 56 }));
    writeFileSync(model, JSON.stringify({ family: 'transformer', heads: 4 }));
    const r = await client!.request({ kind: 'align', a, b, method: 'weight', seed: 0, maxIter: 20, model });
    assert.equal(r.perms['P_transformer.h.0.heads']?.length, 4);
    assert.equal(r.equivalence?.ok, true);
  });
});
