/**
 * LM evaluation (src/engine/lm/evaluate.ts) against losses computed plainly from float64
 * reference logits (helpers/lmReference.ts): causal next-token loss / accuracy / perplexity over
 * N x (T - 1) positions for GPT-2 and Llama, masked-LM loss for BERT at the seeded mask, the
 * same answer whatever the batch plan, a checkpoint folder evaluated on raw text with its own
 * tokenizer.json, points of an interpolation path, the memory plan's refusal and cancellation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { TokenData } from '../../../../src/core/data';
import { maskTokens, loadTokenData } from '../../../../src/core/data';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../../src/engine/backend';
import { EngineError } from '../../../../src/engine/errors';
import { ModelError } from '../../../../src/engine/compute/modelErrors';
import { parseLmConfig, type LmConfig } from '../../../../src/engine/lm/config';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { evaluateLm, evaluateLmAt, evaluateLmCheckpoint, evaluateLmWeights, prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { lmBytesPerSequence, planLmBatches } from '../../../../src/engine/lm/memoryPlan';
import { buildLm } from '../../../../src/engine/lm/model';
import { hfFixture } from '../../helpers/hfFixtures';
import { bertLogits, crossEntropyRow, gpt2Logits, llamaLogits, randomBertMlm, randomGpt2, randomLlama, randomTokens, type RefWeights } from '../../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-eval-');
});
after(() => tmp.remove());

const cfg = (raw: Record<string, unknown>): LmConfig => parseLmConfig(raw, 'test/config.json');
const tokens = (ids: Int32Array, n: number, t: number): TokenData => ({ ids, n, t, source: 'ids.npy', description: `${n} sequences of ${t} tokens` });

/** Mean next-token cross-entropy and top-1 accuracy over every position but the last of each sequence, in float64. */
function causalReference(ids: Int32Array, n: number, t: number, vocab: number, logits: (seq: number[]) => Float64Array) {
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < n; s++) {
    const seq = Array.from(ids.subarray(s * t, (s + 1) * t));
    const z = logits(seq);
    for (let p = 0; p < t - 1; p++) {
      const r = crossEntropyRow(z, p, vocab, seq[p + 1]);
      loss += r.loss;
      correct += r.correct ? 1 : 0;
    }
  }
  const count = n * (t - 1);
  return { loss: loss / count, accuracy: correct / count };
}

describe('causal LM loss against the float64 reference', () => {
  const gpt2 = cfg({ model_type: 'gpt2', n_layer: 2, n_embd: 16, n_head: 4, vocab_size: 23, n_positions: 12 });
  const gw = randomGpt2({ layers: 2, d: 16, vocab: 23, positions: 12, lmHead: false, seed: 31 });
  const gRef = (seq: number[]) => gpt2Logits(gw, seq, { layers: 2, heads: 4, eps: 1e-5, act: 'gelu_tanh', tied: true });

  it('GPT-2: loss = mean next-token cross-entropy over N x (T - 1), accuracy top-1, perplexity exp(loss)', async () => {
    const [n, t] = [5, 12];
    const ids = randomTokens(n, t, 23, 8);
    const input = prepareLmEvaluation(gpt2, tokens(ids, n, t));
    assert.equal(input.rows.length, n * (t - 1));
    const m = await evaluateLmWeights(gw, gpt2, input);
    const want = causalReference(ids, n, t, 23, gRef);
    assert.equal(m.positions, 55);
    assert.ok(Math.abs(m.loss - want.loss) < 1e-5 * want.loss, `loss ${m.loss} vs ${want.loss}`);
    assert.equal(m.accuracy, want.accuracy);
    assert.ok(Math.abs(m.perplexity - Math.exp(want.loss)) < 1e-4 * Math.exp(want.loss));
  });
  it('the batch plan does not change the answer (one sequence per batch, head rows in chunks of 3)', async () => {
    const [n, t] = [4, 10];
    const ids = randomTokens(n, t, 23, 9);
    const input = prepareLmEvaluation(gpt2, tokens(ids, n, t));
    const whole = await evaluateLmWeights(gw, gpt2, input);
    // A budget fitting one sequence's blocks and three head rows per half.
    const budget = 2 * Math.max(lmBytesPerSequence(gpt2, t), 3 * 4 * 3 * 23);
    const plan = planLmBatches(gpt2, t, budget);
    assert.equal(plan.sequences, 1);
    const progress: string[] = [];
    const small = await evaluateLmWeights(gw, gpt2, input, { budgetBytes: budget, onProgress: (p) => progress.push(p.message ?? '') });
    assert.ok(Math.abs(small.loss - whole.loss) < 1e-6 * whole.loss, `${small.loss} vs ${whole.loss}`);
    assert.equal(small.accuracy, whole.accuracy);
    assert.deepEqual(progress, ['Language-model loss: 1 of 4 sequences', 'Language-model loss: 2 of 4 sequences', 'Language-model loss: 3 of 4 sequences', 'Language-model loss: 4 of 4 sequences']);
  });
  it('Llama with grouped-query attention and llama3 rope scaling', async () => {
    const c = cfg({
      model_type: 'llama', num_hidden_layers: 2, hidden_size: 24, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, intermediate_size: 40, vocab_size: 29, max_position_embeddings: 16,
      rope_scaling: { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    });
    const w = randomLlama({ layers: 2, d: 24, heads: 4, kvHeads: 2, headDim: 8, inter: 40, vocab: 29, lmHead: true, seed: 32 });
    const [n, t] = [3, 16];
    const ids = randomTokens(n, t, 29, 10);
    const m = await evaluateLmWeights(w, c, prepareLmEvaluation(c, tokens(ids, n, t)));
    const want = causalReference(ids, n, t, 29, (seq) =>
      llamaLogits(w, seq, { layers: 2, heads: 4, kvHeads: 2, headDim: 8, eps: 1e-6, act: 'silu', tied: false, rope: { theta: 10000, type: 'llama3', factor: 4, low: 1, high: 4, original: 32 } }),
    );
    assert.ok(Math.abs(m.loss - want.loss) < 1e-5 * want.loss, `loss ${m.loss} vs ${want.loss}`);
    assert.equal(m.accuracy, want.accuracy);
  });
  it('frees every tensor it allocates (the model\'s weights stay until dispose)', async () => {
    const model = buildLm(gw, gpt2);
    try {
      const input = prepareLmEvaluation(gpt2, tokens(randomTokens(3, 12, 23, 2), 3, 12));
      const before = tf.memory().numTensors;
      await evaluateLm(model, input, { budgetBytes: 2 * lmBytesPerSequence(gpt2, 12) + 4 * 3 * 23 * 10 });
      assert.equal(tf.memory().numTensors, before);
    } finally {
      model.dispose();
    }
  });
  it('points of a path: lambda 0 is A, lambda 1 is B, the midpoint is the interpolated weights', async () => {
    const other = randomGpt2({ layers: 2, d: 16, vocab: 23, positions: 12, lmHead: false, seed: 33 });
    const [n, t] = [2, 12];
    const ids = randomTokens(n, t, 23, 11);
    const input = prepareLmEvaluation(gpt2, tokens(ids, n, t));
    const a = await evaluateLmWeights(gw, gpt2, input);
    const b = await evaluateLmWeights(other, gpt2, input);
    assert.deepEqual(await evaluateLmAt(gw, other, 0, gpt2, input), a);
    assert.deepEqual(await evaluateLmAt(gw, other, 1, gpt2, input), b);
    const mid = new Map([...gw].map(([k, v]) => [k, { shape: v.shape, data: v.data.map((x, i) => 0.5 * x + 0.5 * other.get(k)!.data[i]) }]));
    const want = causalReference(ids, n, t, 23, (seq) => gpt2Logits(mid, seq, { layers: 2, heads: 4, eps: 1e-5, act: 'gelu_tanh', tied: true }));
    const m = await evaluateLmAt(gw, other, 0.5, gpt2, input);
    assert.ok(Math.abs(m.loss - want.loss) < 1e-5 * want.loss, `loss ${m.loss} vs ${want.loss}`);
  });
  it('refuses sequences of one token, a plan over budget, and stops when cancelled', async () => {
    assert.throws(() => prepareLmEvaluation(gpt2, tokens(new Int32Array([1, 2]), 2, 1)), /ids\.npy: next-token loss needs sequences of at least 2 tokens, got 1/);
    assert.throws(() => planLmBatches(gpt2, 12, 1000), (e: unknown) => e instanceof ModelError && e.kind === 'OverBudget' && /one sequence of 12 tokens needs .*B of activations \(attention is 12 x 12 per head\), over half the 1\.0 kB memory budget/.test(e.message));
    const input = prepareLmEvaluation(gpt2, tokens(randomTokens(2, 12, 23, 1), 2, 12));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(evaluateLmWeights(gw, gpt2, input, { signal: ac.signal }), (e: unknown) => e instanceof EngineError && e.kind === 'Cancelled');
  });
});

describe('masked-LM loss against the float64 reference', () => {
  const bert = cfg({ model_type: 'bert', num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 2, intermediate_size: 24, vocab_size: 19, max_position_embeddings: 12 });
  const w: RefWeights = randomBertMlm({ layers: 2, d: 16, inter: 24, vocab: 19, positions: 12, decoder: false, seed: 41 });
  it('BERT: cross-entropy of the original token at the masked positions, from the corrupted input', async () => {
    const [n, t] = [8, 12];
    const ids = randomTokens(n, t, 19, 12);
    const input = prepareLmEvaluation(bert, tokens(ids, n, t), { maskId: 3, seed: 5 });
    const mask = maskTokens(ids, { maskId: 3, vocab: 19, seed: 5 }, 'ids.npy');
    assert.deepEqual(input.rows, mask.positions);
    assert.deepEqual(input.input, mask.input);
    const m = await evaluateLmWeights(w, bert, input);
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < n; s++) {
      const z = bertLogits(w, Array.from(mask.input.subarray(s * t, (s + 1) * t)), { layers: 2, heads: 2, eps: 1e-12, act: 'gelu', tied: true });
      mask.positions.forEach((pos, j) => {
        if (Math.floor(pos / t) !== s) return;
        const r = crossEntropyRow(z, pos % t, 19, mask.targets[j]);
        loss += r.loss;
        correct += r.correct ? 1 : 0;
      });
    }
    const k = mask.positions.length;
    assert.equal(m.positions, k);
    assert.ok(Math.abs(m.loss - loss / k) < 1e-5 * (loss / k), `loss ${m.loss} vs ${loss / k}`);
    assert.equal(m.accuracy, correct / k);
  });
  it('needs a mask token: the tokenizer\'s [MASK] / <mask>, or one given', () => {
    assert.throws(
      () => prepareLmEvaluation(bert, tokens(randomTokens(2, 12, 19, 1), 2, 12)),
      /ids\.npy: the masked-LM loss needs a mask token: the tokenizer has no \[MASK\] or <mask> \(add one to tokenizer\.json's added_tokens, or give the mask token id\)/,
    );
  });
});

describe('a Hugging Face folder evaluated on raw text', () => {
  it('gpt2-tiny on a .txt with its own tokenizer.json: the same loss as the float64 reference', async () => {
    const dir = hfFixture('gpt2-tiny');
    const text = 'This License applies to any program or other work which contains a notice placed by the copyright holder saying it may be distributed under the terms of this General Public License.\n'.repeat(2);
    const f = path.join(tmp.path, 'license.txt');
    writeFileSync(f, text);
    const r = await evaluateLmCheckpoint(dir, { path: f, seqLen: 24 });
    assert.equal(r.objective, 'causal');
    assert.match(r.model, /^gpt2: 2 layers/);
    assert.match(r.data, /windows of 24 tokens from \d+ tokens of text \(.*gpt2-tiny.tokenizer\.json\)/);
    const lm = await loadLmCheckpoint(dir);
    const data = await loadTokenData({ path: f, seqLen: 24, tokenizer: lm.paths.tokenizer }, { vocab: 320, maxPositions: 64, source: lm.paths.config });
    const want = causalReference(data.ids, data.n, data.t, 320, (seq) => gpt2Logits(lm.tensors, seq, { layers: 2, heads: 4, eps: 1e-5, act: 'gelu_tanh', tied: true }));
    assert.equal(r.positions, data.n * 23);
    assert.ok(Math.abs(r.loss - want.loss) < 1e-5 * want.loss, `loss ${r.loss} vs ${want.loss}`);
    assert.equal(r.accuracy, want.accuracy);
    // A random model over 320 tokens: perplexity near the vocabulary size, as a sanity bound.
    assert.ok(r.perplexity > 50 && r.perplexity < 3000, `perplexity ${r.perplexity}`);
  });
  it('a folder without config.json, or data beyond the vocabulary, is one line naming the file', async () => {
    const dir = path.join(tmp.path, 'noconfig');
    mkdirSync(dir);
    copyFileSync(path.join(hfFixture('gpt2-tiny'), 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const data = path.join(hfFixture('gpt2-tiny'), 'reference_logits.safetensors');
    await assert.rejects(evaluateLmCheckpoint(dir, { path: data }), (e: unknown) => e instanceof ModelError && e.message === `${path.join(dir, 'config.json')}: config.json not found (a Hugging Face folder has one beside the weights)`);
    const big = path.join(tmp.path, 'big-ids.safetensors');
    const header = JSON.stringify({ input_ids: { dtype: 'I32', shape: [1, 2], data_offsets: [0, 8] } }).padEnd(64, ' ');
    const bytes = Buffer.alloc(8 + 64 + 8);
    bytes.writeBigUInt64LE(64n, 0);
    bytes.write(header, 8);
    bytes.writeInt32LE(7, 72);
    bytes.writeInt32LE(320, 76);
    writeFileSync(big, bytes);
    await assert.rejects(evaluateLmCheckpoint(hfFixture('gpt2-tiny'), { path: big }), /big-ids\.safetensors: token id 320 at sequence 0, position 1 is not below the vocabulary size 320 \(.*gpt2-tiny.config\.json\)/);
  });
  it('bert-tiny (sharing the checkpoint tokenizer, no [MASK]) with a mask id given', async () => {
    const dir = hfFixture('bert-tiny');
    const r = await evaluateLmCheckpoint(dir, { path: path.join(dir, 'reference_logits.safetensors') }, { masked: { maskId: 0, seed: 1 } });
    assert.equal(r.objective, 'masked');
    assert.ok(r.positions > 0 && Number.isFinite(r.loss));
  });
});
