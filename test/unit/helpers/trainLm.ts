/**
 * Tiny Llama (RoPE, grouped-query attention, SwiGLU, untied head) and BERT (masked LM, tied
 * decoder) language models trained for real with Adam on token data, written as Hugging Face
 * folders, for tests that need trained models of those families (trainGpt2.ts does GPT-2).
 * The forward passes are written here on tf.Variables from the project's building blocks so
 * they are differentiable on the wasm backend: embeddings as one-hot products and the KV heads
 * repeated by tiling (wasm has no kernel for gather's gradient). The models written are then
 * read and run by the engine's own forward passes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../../../src/engine/gradients';
import { mulberry32 } from '../../../src/core/matching/prng';
import { writeSafetensors } from '../../../src/core/safetensors';
import { attention, defaultInvFreq, gelu, layerNorm, positions, rmsNorm, rotaryTables, silu } from '../../../src/engine/lm/blocks';
import { randomBertMlm, randomLlama, type RefTensor } from './lmReference';

export interface TinyLlama {
  readonly layers: number;
  readonly d: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly inter: number;
  readonly vocab: number;
  readonly positions: number;
}

export interface TinyBert {
  readonly layers: number;
  readonly d: number;
  readonly heads: number;
  readonly inter: number;
  readonly vocab: number;
  readonly positions: number;
}

const LLAMA_EPS = 1e-6;
const BERT_EPS = 1e-12;
const ROPE_THETA = 10000;

export type Weights = ReadonlyMap<string, tf.Tensor>;

export function getter(w: Weights): { m: (name: string) => tf.Tensor2D; v: (name: string) => tf.Tensor1D } {
  const get = (name: string): tf.Tensor => {
    const t = w.get(name);
    if (!t) throw new Error(`no ${name}`);
    return t;
  };
  return { m: (name) => get(name) as tf.Tensor2D, v: (name) => get(name) as tf.Tensor1D };
}

/** x [tokens, in] times a PyTorch Linear weight [out, in] (+ bias). */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  const y = tf.matMul(x, weight, false, true) as tf.Tensor2D;
  return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
}

function embedRows(table: tf.Tensor2D, ids: tf.Tensor2D, vocab: number): tf.Tensor2D {
  return tf.matMul(tf.cast(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, vocab), 'float32'), table) as tf.Tensor2D;
}

function rotate(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin));
}

/** Causal grouped-query attention with rotary positions; query head h reads KV head floor(h / (heads / kvHeads)). */
function gqaAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, n: number, s: number, m: TinyLlama, rope: { cos: tf.Tensor4D; sin: tf.Tensor4D }): tf.Tensor2D {
  const { heads: H, kvHeads: KV, headDim: hd } = m;
  const group = H / KV;
  // [n x s, KV, 1, hd] tiled to [n x s, KV, group, hd]: tile's gradient stops at rank 4.
  const repeat = (x: tf.Tensor4D): tf.Tensor4D => tf.reshape(tf.tile(tf.reshape(x, [n * s, KV, 1, hd]), [1, 1, group, 1]), [n, s, H, hd]);
  const q4 = rotate(tf.reshape(q, [n, s, H, hd]), rope.cos, rope.sin);
  const k4 = repeat(rotate(tf.reshape(k, [n, s, KV, hd]), rope.cos, rope.sin));
  const v4 = repeat(tf.reshape(v, [n, s, KV, hd]));
  const qh = tf.reshape(tf.transpose(q4, [0, 2, 1, 3]), [n * H, s, hd]) as tf.Tensor3D;
  const kT = tf.reshape(tf.transpose(k4, [0, 2, 3, 1]), [n * H, hd, s]) as tf.Tensor3D;
  const vh = tf.reshape(tf.transpose(v4, [0, 2, 1, 3]), [n * H, s, hd]) as tf.Tensor3D;
  const mask = new Float32Array(s * s);
  for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) mask[i * s + j] = -1e9;
  const scores = tf.add(tf.mul(tf.matMul(qh, kT), 1 / Math.sqrt(hd)), tf.tensor2d(mask, [s, s]));
  const out = tf.matMul(tf.softmax(scores, -1), vh);
  return tf.reshape(tf.transpose(tf.reshape(out, [n, H, s, hd]), [0, 2, 1, 3]), [n * s, H * hd]) as tf.Tensor2D;
}

/** Logits [n x t, vocab] of a Llama whose weights are tfjs tensors by Hugging Face name. */
function llamaLogits(w: Weights, ids: tf.Tensor2D, m: TinyLlama): tf.Tensor2D {
  const [n, s] = ids.shape;
  const g = getter(w);
  const rope = rotaryTables(defaultInvFreq(m.headDim, ROPE_THETA), s);
  let x = embedRows(g.m('model.embed_tokens.weight'), ids, m.vocab);
  for (let l = 0; l < m.layers; l++) {
    const p = `model.layers.${l}`;
    const a = rmsNorm(x, g.v(`${p}.input_layernorm.weight`), LLAMA_EPS);
    const att = gqaAttention(linear(a, g.m(`${p}.self_attn.q_proj.weight`)), linear(a, g.m(`${p}.self_attn.k_proj.weight`)), linear(a, g.m(`${p}.self_attn.v_proj.weight`)), n, s, m, rope);
    x = tf.add(x, linear(att, g.m(`${p}.self_attn.o_proj.weight`)));
    const f = rmsNorm(x, g.v(`${p}.post_attention_layernorm.weight`), LLAMA_EPS);
    const hid = tf.mul(silu(linear(f, g.m(`${p}.mlp.gate_proj.weight`))), linear(f, g.m(`${p}.mlp.up_proj.weight`))) as tf.Tensor2D;
    x = tf.add(x, linear(hid, g.m(`${p}.mlp.down_proj.weight`)));
  }
  return linear(rmsNorm(x, g.v('model.norm.weight'), LLAMA_EPS), g.m('lm_head.weight'));
}

/** Masked-LM logits [n x t, vocab] of a BERT (token type 0 everywhere, tied decoder). */
function bertLogits(w: Weights, ids: tf.Tensor2D, m: TinyBert): tf.Tensor2D {
  const [n, s] = ids.shape;
  const g = getter(w);
  const ln = (x: tf.Tensor2D, name: string) => layerNorm(x, g.v(`${name}.weight`), g.v(`${name}.bias`), BERT_EPS);
  const lin = (x: tf.Tensor2D, name: string) => linear(x, g.m(`${name}.weight`), g.v(`${name}.bias`));
  const e = 'bert.embeddings';
  const word = g.m(`${e}.word_embeddings.weight`);
  const type0 = tf.reshape(tf.slice(g.m(`${e}.token_type_embeddings.weight`), [0, 0], [1, -1]), [-1]);
  let x = ln(tf.add(tf.add(embedRows(word, ids, m.vocab), positions(g.m(`${e}.position_embeddings.weight`), n, s)), type0) as tf.Tensor2D, `${e}.LayerNorm`);
  for (let l = 0; l < m.layers; l++) {
    const b = `bert.encoder.layer.${l}`;
    const att = attention(lin(x, `${b}.attention.self.query`), lin(x, `${b}.attention.self.key`), lin(x, `${b}.attention.self.value`), { batch: n, seq: s, heads: m.heads, kvHeads: m.heads, headDim: m.d / m.heads }, { causal: false });
    const a = ln(tf.add(x, lin(att, `${b}.attention.output.dense`)) as tf.Tensor2D, `${b}.attention.output.LayerNorm`);
    x = ln(tf.add(a, lin(gelu(lin(a, `${b}.intermediate.dense`), 'exact'), `${b}.output.dense`)) as tf.Tensor2D, `${b}.output.LayerNorm`);
  }
  const h = ln(gelu(lin(x, 'cls.predictions.transform.dense'), 'exact'), 'cls.predictions.transform.LayerNorm');
  return tf.add(tf.matMul(h, word, false, true), g.v('cls.predictions.bias')) as tf.Tensor2D;
}

export interface TrainOptions {
  readonly seed: number;
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
}

/**
 * Adam on `loss` from `init` (embedding tables scaled down: they train faster small); returns the
 * weights and the last loss. Each step draws `batch` seeded rows of `data` (trainVit.ts passes
 * labels as one-token rows and reads its images by the row numbers).
 */
export async function train(init: ReadonlyMap<string, RefTensor>, data: { ids: Int32Array; n: number; t: number }, o: TrainOptions, loss: (w: Weights, ids: tf.Tensor2D, rows: Int32Array) => tf.Scalar): Promise<{ weights: Map<string, RefTensor>; loss: number }> {
  const vars = new Map<string, tf.Variable>();
  for (const [name, t] of init) {
    const scale = /(embed_tokens|_embeddings)\.weight$/.test(name) ? 0.1 : 1;
    vars.set(name, tf.variable(tf.tensor(t.data.map((v) => v * scale), [...t.shape])));
  }
  const opt = tf.train.adam(o.lr);
  const rand = mulberry32(o.seed + 1000);
  const { n, t } = data;
  let last = NaN;
  for (let step = 0; step < o.steps; step++) {
    const rows = Int32Array.from({ length: o.batch }, () => Math.floor(rand() * n));
    const batch = new Int32Array(o.batch * t);
    rows.forEach((r, i) => batch.set(data.ids.subarray(r * t, (r + 1) * t), i * t));
    const cost = opt.minimize(() => loss(vars, tf.tensor2d(batch, [o.batch, t], 'int32'), rows), true);
    if (cost && step === o.steps - 1) last = (await cost.data())[0];
    cost?.dispose();
  }
  const weights = new Map<string, RefTensor>();
  for (const [name, v] of vars) {
    weights.set(name, { shape: [...v.shape], data: Float32Array.from(await v.data()) });
    v.dispose();
  }
  opt.dispose();
  return { weights, loss: last };
}

/** Trains a tiny Llama (next-token cross-entropy) on token data [n, t]. */
export function trainTinyLlama(m: TinyLlama, data: { ids: Int32Array; n: number; t: number }, o: TrainOptions): Promise<{ weights: Map<string, RefTensor>; loss: number }> {
  const init = randomLlama({ layers: m.layers, d: m.d, heads: m.heads, kvHeads: m.kvHeads, headDim: m.headDim, inter: m.inter, vocab: m.vocab, lmHead: true, seed: o.seed });
  return train(init, data, o, (w, ids) => {
    const { t } = data;
    const b = ids.shape[0];
    const logits = tf.reshape(llamaLogits(w, ids, m), [b, t, m.vocab]);
    const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [b, t - 1, m.vocab]), [-1, m.vocab]);
    const target = tf.reshape(tf.slice(ids, [0, 1], [b, t - 1]), [-1]) as tf.Tensor1D;
    return tf.losses.softmaxCrossEntropy(tf.oneHot(target, m.vocab), pred) as tf.Scalar;
  });
}

/**
 * Trains a tiny BERT (masked LM): in each sequence a seeded 15% of the positions are replaced by
 * `maskId` and the loss is the cross-entropy of the original tokens there.
 */
export function trainTinyBert(m: TinyBert, data: { ids: Int32Array; n: number; t: number }, o: TrainOptions & { readonly maskId: number }): Promise<{ weights: Map<string, RefTensor>; loss: number }> {
  const init = randomBertMlm({ layers: m.layers, d: m.d, inter: m.inter, vocab: m.vocab, positions: m.positions, decoder: false, seed: o.seed });
  const { n, t } = data;
  const rand = mulberry32(o.seed + 2000);
  const masked = Uint8Array.from({ length: n * t }, () => (rand() < 0.15 ? 1 : 0));
  return train(init, data, o, (w, ids, rows) => {
    const b = rows.length;
    const weight = new Float32Array(b * t);
    const input = new Int32Array(b * t);
    const original = ids.dataSync();
    rows.forEach((r, i) => {
      for (let p = 0; p < t; p++) {
        weight[i * t + p] = masked[r * t + p];
        input[i * t + p] = masked[r * t + p] ? o.maskId : original[i * t + p];
      }
    });
    const logits = bertLogits(w, tf.tensor2d(input, [b, t], 'int32'), m);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, m.vocab), logits, tf.tensor1d(weight)) as tf.Scalar;
  });
}

/** Writes a Hugging Face folder (config.json, model.safetensors with `format: pt`) at `dir`. */
export async function writeHfFolder(dir: string, config: Record<string, unknown>, weights: ReadonlyMap<string, RefTensor>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeSafetensors(
    path.join(dir, 'model.safetensors'),
    [...weights].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, read: async () => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    { metadata: { format: 'pt' } },
  );
}

export function llamaConfig(m: TinyLlama): Record<string, unknown> {
  return {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_act: 'silu', hidden_size: m.d, intermediate_size: m.inter,
    num_attention_heads: m.heads, num_key_value_heads: m.kvHeads, head_dim: m.headDim, num_hidden_layers: m.layers,
    max_position_embeddings: m.positions, rms_norm_eps: LLAMA_EPS, rope_theta: ROPE_THETA, tie_word_embeddings: false, vocab_size: m.vocab,
  };
}

export function bertConfig(m: TinyBert): Record<string, unknown> {
  return {
    model_type: 'bert', architectures: ['BertForMaskedLM'], hidden_act: 'gelu', hidden_size: m.d, intermediate_size: m.inter,
    num_attention_heads: m.heads, num_hidden_layers: m.layers, max_position_embeddings: m.positions, layer_norm_eps: BERT_EPS,
    type_vocab_size: 2, tie_word_embeddings: true, vocab_size: m.vocab,
  };
}
