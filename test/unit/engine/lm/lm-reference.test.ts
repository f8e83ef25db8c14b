/**
 * LM forward passes (src/engine/lm) against plain float64 references (helpers/lmReference.ts)
 * on random weights, for the config options the fixtures do not exercise: untied/tied heads,
 * activations, GPT-2 attention scaling options, head_dim apart from hidden / heads, grouped-query
 * attention, q/k/v biases, q/k norms, Gemma's norms and embedding scale, rotary scaling
 * (linear, dynamic, llama3), BERT with an untied decoder; plus config.json reading and errors.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../../src/engine/backend';
import { ModelError } from '../../../../src/engine/compute/modelErrors';
import { parseLmConfig, type LmConfig } from '../../../../src/engine/lm/config';
import { buildLm } from '../../../../src/engine/lm/model';
import { ropeInvFreq } from '../../../../src/engine/lm/rope';
import {
  bertLogits,
  gpt2Logits,
  llamaLogits,
  randomBertMlm,
  randomGpt2,
  randomLlama,
  randomTokens,
  refInvFreq,
  type RefLlama,
  type RefWeights,
} from '../../helpers/lmReference';

before(async () => {
  await initBackend('wasm');
});

const cfg = (raw: Record<string, unknown>): LmConfig => parseLmConfig(raw, 'test/config.json');

/** Largest |tfjs - float64| over n sequences of s tokens, relative to max(1, largest logit). */
function worstDifference(w: RefWeights, config: LmConfig, n: number, s: number, reference: (tokens: number[]) => Float64Array, seed = 3): number {
  const model = buildLm(w, config, 'test/model.safetensors');
  try {
    const ids = randomTokens(n, s, config.vocab, seed);
    const got = tf.tidy(() => model.logits(tf.tensor2d(ids, [n, s], 'int32')).dataSync());
    const want: number[] = [];
    for (let i = 0; i < n; i++) want.push(...reference(Array.from(ids.subarray(i * s, (i + 1) * s))));
    assert.equal(got.length, want.length, 'logits size');
    const scale = Math.max(1, ...want.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
    return worst;
  } finally {
    model.dispose();
  }
}

const TOL = 2e-5;

describe('GPT-2 against the float64 reference', () => {
  const base = { model_type: 'gpt2', n_layer: 2, n_embd: 16, n_head: 4, vocab_size: 23, n_positions: 10 };
  it('tied wte, gelu_new, layer_norm_epsilon from config', () => {
    const w = randomGpt2({ layers: 2, d: 16, vocab: 23, positions: 10, lmHead: false, seed: 1 });
    const c = cfg({ ...base, layer_norm_epsilon: 1e-3 });
    assert.equal(c.eps, 1e-3);
    const rel = worstDifference(w, c, 3, 10, (t) => gpt2Logits(w, t, { layers: 2, heads: 4, eps: 1e-3, act: 'gelu_tanh', tied: true }));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('untied lm_head, exact gelu, attention scaled by inverse layer index', () => {
    const w = randomGpt2({ layers: 2, d: 16, vocab: 23, positions: 10, lmHead: true, seed: 2 });
    const c = cfg({ ...base, tie_word_embeddings: false, activation_function: 'gelu', scale_attn_by_inverse_layer_idx: true });
    const rel = worstDifference(w, c, 2, 7, (t) => gpt2Logits(w, t, { layers: 2, heads: 4, eps: 1e-5, act: 'gelu', tied: false, scaleAttnByLayer: true }));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('relu, unscaled attention weights', () => {
    const w = randomGpt2({ layers: 1, d: 16, vocab: 23, positions: 10, lmHead: false, seed: 3 });
    const c = cfg({ ...base, n_layer: 1, activation_function: 'relu', scale_attn_weights: false });
    const rel = worstDifference(w, c, 2, 6, (t) => gpt2Logits(w, t, { layers: 1, heads: 4, eps: 1e-5, act: 'relu', tied: true, scaleAttnWeights: false }));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('the reference has teeth: a tied head where the file has its own lm_head differs', () => {
    const w = randomGpt2({ layers: 1, d: 16, vocab: 23, positions: 10, lmHead: true, seed: 4 });
    const rel = worstDifference(w, cfg({ ...base, n_layer: 1, tie_word_embeddings: false }), 2, 6, (t) => gpt2Logits(w, t, { layers: 1, heads: 4, eps: 1e-5, act: 'gelu_tanh', tied: true }));
    assert.ok(rel > 1e-2, `relative difference ${rel}`);
  });
});

describe('Llama family against the float64 reference', () => {
  const llama = { model_type: 'llama', num_hidden_layers: 2, hidden_size: 24, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, intermediate_size: 40, vocab_size: 29, max_position_embeddings: 16 };
  const ref = (over: Partial<RefLlama>): RefLlama => ({ layers: 2, heads: 4, kvHeads: 2, headDim: 8, eps: 1e-6, act: 'silu', tied: false, rope: { theta: 10000, type: 'default' }, ...over });
  const weights = (seed: number, more: Partial<Parameters<typeof randomLlama>[0]> = {}) =>
    randomLlama({ layers: 2, d: 24, heads: 4, kvHeads: 2, headDim: 8, inter: 40, vocab: 29, lmHead: true, seed, ...more });

  it('grouped-query attention, head_dim apart from hidden / heads, rope_theta (transformers 4 keys), untied lm_head', () => {
    const w = weights(11);
    const c = cfg({ ...llama, rope_theta: 500, rms_norm_eps: 1e-5 });
    const rel = worstDifference(w, c, 2, 12, (t) => llamaLogits(w, t, ref({ rope: { theta: 500, type: 'default' }, eps: 1e-5 })));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('rope_parameters (transformers 5) with linear scaling', () => {
    const w = weights(12);
    const c = cfg({ ...llama, rope_parameters: { rope_theta: 1000, rope_type: 'linear', factor: 2.5 } });
    const rel = worstDifference(w, c, 2, 16, (t) => llamaLogits(w, t, ref({ rope: { theta: 1000, type: 'linear', factor: 2.5 } })));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('llama3 rope scaling (all three frequency bands in play)', () => {
    const w = weights(13);
    const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 8, original_max_position_embeddings: 64 };
    const c = cfg({ ...llama, rope_theta: 10000, rope_scaling: scaling });
    const r = ref({ rope: { theta: 10000, type: 'llama3', factor: 8, low: 1, high: 8, original: 64 } });
    const bands = refInvFreq(r.rope, 8, 16).map((f, i) => f / (1 / 10000 ** ((2 * i) / 8)));
    assert.ok(bands.some((x) => x === 1) && bands.some((x) => Math.abs(x - 1 / 8) < 1e-12) && bands.some((x) => x > 1 / 8 && x < 1), `bands ${bands}`);
    const rel = worstDifference(w, c, 2, 16, (t) => llamaLogits(w, t, r));
    assert.ok(rel < TOL, `relative difference ${rel}`);
    const unscaled = worstDifference(w, c, 2, 16, (t) => llamaLogits(w, t, ref({})));
    assert.ok(unscaled > 1e-3, `scaling must matter: ${unscaled}`);
  });
  it('dynamic scaling raises the base only past max_position_embeddings (inverse frequencies)', () => {
    const rope = { theta: 10000, type: 'dynamic' as const, factor: 4 };
    const inside = ropeInvFreq(rope, 16, 100, 128);
    const past = ropeInvFreq(rope, 16, 300, 128);
    const def = ropeInvFreq({ theta: 10000, type: 'default', factor: 1 }, 16, 100, 128);
    assert.deepEqual(Array.from(inside), Array.from(def));
    const want = refInvFreq({ ...rope, maxPositions: 128 }, 16, 300);
    want.forEach((f, i) => assert.ok(Math.abs(past[i] - f) <= 1e-6 * f, `frequency ${i}: ${past[i]} vs ${f}`));
    assert.ok(past[7] < def[7] * 0.5);
  });
  it('Qwen2: q/k/v biases, tied embeddings', () => {
    const w = weights(14, { qkvBias: true, lmHead: false });
    const c = cfg({ ...llama, model_type: 'qwen2', tie_word_embeddings: true, sliding_window: 4, use_sliding_window: false });
    assert.equal(c.slidingWindow, undefined);
    const rel = worstDifference(w, c, 2, 10, (t) => llamaLogits(w, t, ref({ tied: true })));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('Qwen3: per-head q/k RMSNorm', () => {
    const w = weights(15, { qkNorm: true });
    const rel = worstDifference(w, cfg({ ...llama, model_type: 'qwen3' }), 2, 9, (t) => llamaLogits(w, t, ref({})));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('Gemma: (1 + weight) norms, sqrt(hidden) embedding scale, tanh-GELU gate, tied', () => {
    const w = weights(16, { lmHead: false });
    const c = cfg({ ...llama, model_type: 'gemma', hidden_act: 'gelu', hidden_activation: 'gelu_pytorch_tanh' });
    assert.equal(c.act, 'gelu_tanh');
    assert.equal(c.tied, true);
    const rel = worstDifference(w, c, 2, 8, (t) => llamaLogits(w, t, ref({ gemma: true, act: 'gelu_tanh', tied: true })));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('Mistral: a sliding window shorter than the sequence is refused in one line', () => {
    const w = weights(17);
    const c = cfg({ ...llama, model_type: 'mistral', sliding_window: 6 });
    const model = buildLm(w, c, 'test/model.safetensors');
    try {
      const ok = tf.tidy(() => model.logits(tf.tensor2d(randomTokens(1, 6, 29, 1), [1, 6], 'int32')).shape);
      assert.deepEqual(ok, [1, 6, 29]);
      assert.throws(
        () => tf.tidy(() => model.logits(tf.tensor2d(randomTokens(1, 7, 29, 1), [1, 7], 'int32'))),
        (e: unknown) => e instanceof ModelError && /sequence length 7 exceeds the sliding attention window 6 of test\/config\.json/.test(e.message),
      );
    } finally {
      model.dispose();
    }
  });
});

describe('BERT masked-LM against the float64 reference', () => {
  const bert = { model_type: 'bert', num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 2, intermediate_size: 24, vocab_size: 19, max_position_embeddings: 12 };
  it('tied decoder, exact gelu, eps 1e-12', () => {
    const w = randomBertMlm({ layers: 2, d: 16, inter: 24, vocab: 19, positions: 12, decoder: false, seed: 21 });
    const rel = worstDifference(w, cfg(bert), 3, 12, (t) => bertLogits(w, t, { layers: 2, heads: 2, eps: 1e-12, act: 'gelu', tied: true }));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
  it('untied decoder, relu, eps from layer_norm_eps', () => {
    const w = randomBertMlm({ layers: 1, d: 16, inter: 24, vocab: 19, positions: 12, decoder: true, seed: 22 });
    const c = cfg({ ...bert, num_hidden_layers: 1, tie_word_embeddings: false, hidden_act: 'relu', layer_norm_eps: 1e-5 });
    const rel = worstDifference(w, c, 2, 7, (t) => bertLogits(w, t, { layers: 1, heads: 2, eps: 1e-5, act: 'relu', tied: false }));
    assert.ok(rel < TOL, `relative difference ${rel}`);
  });
});

describe('config.json', () => {
  const fails = (raw: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => cfg(raw), (e: unknown) => e instanceof ModelError && re.test(e.message) && e.message.startsWith('test/config.json: ') && !e.message.includes('\n'));
  it('names the file and the key to add when something needed is missing', () => {
    fails({ n_layer: 2 }, /no "model_type": add it/);
    // A missing head count takes GPT2Config's 12 (as transformers does), which does not divide 16.
    fails({ model_type: 'gpt2', n_layer: 2, n_embd: 16, vocab_size: 5, n_positions: 4 }, /12 attention heads do not divide the width 16/);
    fails({ model_type: 'llama', num_hidden_layers: 1, hidden_size: 18, num_attention_heads: 4, vocab_size: 5, max_position_embeddings: 8 }, /4 attention heads do not divide the width 18: add "head_dim"/);
    fails({ model_type: 't5' }, /model_type "t5" has no LM forward pass here/);
    fails({ model_type: 'llama', num_hidden_layers: 1, hidden_size: 16, num_attention_heads: 4, vocab_size: 5, max_position_embeddings: 8, rope_scaling: { type: 'yarn', factor: 4 } }, /"rope_scaling" type "yarn" is not supported/);
    fails({ model_type: 'llama', num_hidden_layers: 1, hidden_size: 16, num_attention_heads: 4, vocab_size: 5, max_position_embeddings: 8, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /needs a positive "original_max_position_embeddings"/);
    fails({ model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 4, vocab_size: 5, n_positions: 4, activation_function: 'quick_gelu' }, /"activation_function" "quick_gelu" is not supported/);
  });
  it('takes the config classes\' defaults for what save_pretrained always writes', () => {
    const g = cfg({ model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 4, vocab_size: 5, n_positions: 4 });
    assert.deepEqual([g.eps, g.act, g.tied, g.objective, g.kvHeads, g.headDim], [1e-5, 'gelu_tanh', true, 'causal', 4, 4]);
    const l = cfg({ model_type: 'llama', num_hidden_layers: 1, hidden_size: 16, num_attention_heads: 4, vocab_size: 5, max_position_embeddings: 8 });
    assert.deepEqual([l.eps, l.act, l.tied, l.rope?.theta, l.rope?.type], [1e-6, 'silu', false, 10000, 'default']);
    const b = cfg({ model_type: 'bert', num_hidden_layers: 1, hidden_size: 16, num_attention_heads: 4, vocab_size: 5, max_position_embeddings: 8 });
    assert.deepEqual([b.eps, b.act, b.tied, b.objective], [1e-12, 'gelu', true, 'masked']);
    // Sizes too: a Llama config without max_position_embeddings reads as LlamaConfig's 2048.
    const noPositions = cfg({ model_type: 'llama', num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 4, vocab_size: 5 });
    assert.equal(noPositions.maxPositions, 2048);
    assert.ok(noPositions.defaulted.includes('"max_position_embeddings" = 2048'));
  });
  it('refuses weights that disagree with config.json, naming both', () => {
    const w = randomGpt2({ layers: 2, d: 16, vocab: 23, positions: 10, lmHead: false, seed: 1 });
    assert.throws(
      () => buildLm(w, cfg({ model_type: 'gpt2', n_layer: 2, n_embd: 16, n_head: 4, vocab_size: 24, n_positions: 10 }), 'm.safetensors'),
      (e: unknown) => e instanceof ModelError && /^m\.safetensors: `transformer\.wte\.weight` is \[23, 16\] but test\/config\.json implies \[24, 16\]$/.test(e.message),
    );
    assert.throws(
      () => buildLm(w, cfg({ model_type: 'gpt2', n_layer: 3, n_embd: 16, n_head: 4, vocab_size: 23, n_positions: 10 }), 'm.safetensors'),
      (e: unknown) => e instanceof ModelError && /block `transformer\.h\.2` is missing \(config\.json has 3 layers\)/.test(e.message),
    );
    assert.throws(
      () => buildLm(w, cfg({ model_type: 'llama', num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 4, vocab_size: 23, max_position_embeddings: 10 }), 'm.safetensors'),
      (e: unknown) => e instanceof ModelError && /config\.json says model_type "llama" but the weights are named like gpt2/.test(e.message),
    );
    const untied = cfg({ model_type: 'gpt2', n_layer: 2, n_embd: 16, n_head: 4, vocab_size: 23, n_positions: 10, tie_word_embeddings: false });
    assert.throws(() => buildLm(w, untied, 'm.safetensors'), (e: unknown) => e instanceof ModelError && /`lm_head\.weight` is missing and test\/config\.json says "tie_word_embeddings": false/.test(e.message));
  });
  it('refuses a sequence longer than the model\'s positions', () => {
    const w = randomGpt2({ layers: 1, d: 16, vocab: 23, positions: 10, lmHead: false, seed: 1 });
    const model = buildLm(w, cfg({ model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 4, vocab_size: 23, n_positions: 10 }));
    try {
      assert.throws(() => tf.tidy(() => model.logits(tf.zeros([1, 11], 'int32') as tf.Tensor2D)), /sequence length 11 exceeds the model's 10 positions/);
    } finally {
      model.dispose();
    }
  });
});
