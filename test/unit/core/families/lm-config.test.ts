/**
 * config.json as transformers loads it: a key the file leaves out takes its model_type's class
 * default (LlamaConfig, MistralConfig, Qwen2Config, GPT2Config, BertConfig, ...), and the config
 * says which ones it took so the CLI can warn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultsNotice, parseLmConfig } from '../../../../src/core/families/lmConfig';

const llama = { model_type: 'llama', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, vocab_size: 100, intermediate_size: 128 };

test('a Llama config.json without max_position_embeddings takes LlamaConfig\'s 2048 and says so', () => {
  const c = parseLmConfig(llama, '/models/llama-a/config.json');
  assert.equal(c.maxPositions, 2048);
  assert.deepEqual(c.defaulted, ['"max_position_embeddings" = 2048']);
  assert.equal(defaultsNotice(c), 'llama-a/config.json: no "max_position_embeddings" = 2048 given: using LlamaConfig\'s default, as transformers does');
  const full = parseLmConfig({ ...llama, max_position_embeddings: 512 }, '/models/llama-a/config.json');
  assert.equal(full.maxPositions, 512);
  assert.deepEqual(full.defaulted, []);
  assert.equal(defaultsNotice(full), undefined);
});

test('each model_type takes its own class\'s defaults (not one table for all)', () => {
  const bare = { num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, vocab_size: 100, intermediate_size: 128 };
  const mistral = parseLmConfig({ ...bare, model_type: 'mistral', num_attention_heads: 16 }, 'm/config.json');
  assert.equal(mistral.maxPositions, 131072);
  assert.equal(mistral.kvHeads, 8, 'MistralConfig defaults num_key_value_heads to 8, not to the head count');
  assert.equal(mistral.slidingWindow, 4096);
  assert.equal(parseLmConfig({ ...bare, model_type: 'mistral', num_key_value_heads: 4, sliding_window: null }, 'm/config.json').slidingWindow, undefined);
  const qwen2 = parseLmConfig({ ...bare, model_type: 'qwen2', num_key_value_heads: 2 }, 'q/config.json');
  assert.equal(qwen2.maxPositions, 32768);
  const gpt2 = parseLmConfig({ model_type: 'gpt2', n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 100 }, 'g/config.json');
  assert.equal(gpt2.maxPositions, 1024);
  assert.deepEqual(gpt2.defaulted, ['"n_positions" = 1024']);
  assert.equal(gpt2.intermediate, 256, 'n_inner absent: 4 x n_embd, derived, not a class default');
  const bert = parseLmConfig({ ...bare, model_type: 'bert' }, 'b/config.json');
  assert.equal(bert.maxPositions, 512);
  const llamaBare = parseLmConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4 }, 'l/config.json');
  assert.deepEqual(llamaBare.defaulted, ['"num_hidden_layers" = 32', '"vocab_size" = 32000', '"max_position_embeddings" = 2048', '"intermediate_size" = 11008']);
  assert.equal(llamaBare.kvHeads, 4, 'LlamaConfig: num_key_value_heads defaults to the head count');
  assert.match(defaultsNotice(llamaBare)!, /^l\/config\.json: no "num_hidden_layers" = 32, .* given: using LlamaConfig's defaults, as transformers does$/);
});

test('a key that is present with a bad value is still refused, naming the file and the key', () => {
  assert.throws(() => parseLmConfig({ ...llama, max_position_embeddings: 0 }, 'x/config.json'), /x\/config\.json: "max_position_embeddings" must be a positive integer, got 0/);
  assert.throws(() => parseLmConfig({ ...llama, intermediate_size: 'wide' }, 'x/config.json'), /"intermediate_size" must be a positive integer, got "wide"/);
});

test('Mixtral: experts from num_local_experts / num_experts_per_tok, MixtralConfig defaults, rotary base in either form', () => {
  const bare = { model_type: 'mixtral', num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, vocab_size: 100, intermediate_size: 96, max_position_embeddings: 64 };
  const c = parseLmConfig({ ...bare, num_local_experts: 4, num_experts_per_tok: 2, num_key_value_heads: 2, head_dim: null, rope_parameters: { rope_theta: 5e5, rope_type: 'default' } }, 'x/config.json');
  assert.equal(c.family, 'mixtral');
  assert.deepEqual(c.experts, { count: 4, topK: 2 });
  assert.equal(c.headDim, 16, 'head_dim null: hidden / heads');
  assert.equal(c.rope?.theta, 5e5);
  // Older hub configs (transformers 4): a top-level rope_theta.
  assert.equal(parseLmConfig({ ...bare, rope_theta: 2e5, num_key_value_heads: 2, num_local_experts: 8, num_experts_per_tok: 2 }, 'x/config.json').rope?.theta, 2e5);
  const defaults = parseLmConfig({ ...bare, num_attention_heads: 32, hidden_size: 256 }, 'mixtral-a/config.json');
  assert.deepEqual(defaults.experts, { count: 8, topK: 2 });
  assert.equal(defaults.kvHeads, 8, 'MixtralConfig defaults num_key_value_heads to 8');
  assert.equal(defaults.rope?.theta, 1e6, 'MixtralConfig\'s rotary base is 1e6');
  assert.equal(defaults.eps, 1e-5);
  assert.equal(defaults.slidingWindow, undefined, 'MixtralConfig: no sliding window by default');
  assert.deepEqual(defaults.defaulted, ['"num_key_value_heads" = 8', '"num_local_experts" = 8', '"num_experts_per_tok" = 2']);
  assert.match(defaultsNotice(defaults)!, /using MixtralConfig's defaults/);
  assert.throws(() => parseLmConfig({ ...bare, num_key_value_heads: 2, num_local_experts: 2, num_experts_per_tok: 3 }, 'x/config.json'), /x\/config\.json: "num_experts_per_tok" 3 exceeds "num_local_experts" 2/);
});
