/**
 * Tiny GPT-2 language models trained for real (next-token cross-entropy, Adam, tfjs gradients)
 * and written as Hugging Face folders (config.json + model.safetensors, tied embeddings), for
 * barrier tests that need two trained models from different seeds. The forward pass is the
 * project's transformer building blocks applied to tf.Variables, so it is differentiable; the
 * models written are then read and evaluated by the engine's own GPT-2 forward pass.
 * Also: token data from a seeded sparse Markov chain (a small "language" a tiny model learns in
 * a few hundred steps) and an .npy writer for it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../../../src/engine/gradients';
import { mulberry32 } from '../../../src/core/matching/prng';
import { writeSafetensors } from '../../../src/core/safetensors';
import { attention, dense, gelu, layerNorm, positions } from '../../../src/engine/lm/blocks';
import { randomGpt2, type RefTensor } from './lmReference';

export interface TinyGpt2 {
  readonly layers: number;
  readonly d: number;
  readonly heads: number;
  readonly vocab: number;
  readonly positions: number;
}

const EPS = 1e-5;

/**
 * Sequences [n, t] of a seeded Markov chain over `vocab` tokens: each token is followed by one of
 * `branching` successors (fixed per token), the first most often.
 */
export function markovTokens(n: number, t: number, vocab: number, seed: number, branching = 3): Int32Array {
  const rand = mulberry32(seed);
  const next = Array.from({ length: vocab }, () => Array.from({ length: branching }, () => Math.floor(rand() * vocab)));
  const ids = new Int32Array(n * t);
  for (let s = 0; s < n; s++) {
    let tok = Math.floor(rand() * vocab);
    for (let p = 0; p < t; p++) {
      ids[s * t + p] = tok;
      const r = rand();
      tok = next[tok][r < 0.6 ? 0 : r < 0.85 ? 1 : Math.min(branching - 1, 2)];
    }
  }
  return ids;
}

/** An .npy file of int32 token ids [n, t] (C order, little-endian). */
export function writeTokensNpy(file: string, ids: Int32Array, n: number, t: number): void {
  let header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${n}, ${t}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength)]));
}

/** Logits [n x t, vocab] of a GPT-2 (tied head, gelu_new) whose weights are tfjs tensors by Hugging Face name. */
function forward(w: ReadonlyMap<string, tf.Tensor>, ids: tf.Tensor2D, m: TinyGpt2): tf.Tensor2D {
  const [n, s] = ids.shape;
  const get = (name: string): tf.Tensor => {
    const t = w.get(name);
    if (!t) throw new Error(`no ${name}`);
    return t;
  };
  const g2 = (name: string) => get(name) as tf.Tensor2D;
  const g1 = (name: string) => get(name) as tf.Tensor1D;
  const wte = g2('transformer.wte.weight');
  // One-hot rows times the table: the wasm backend has no kernel for gather's gradient.
  const onehot = tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, m.vocab) as tf.Tensor2D;
  let x = tf.add(tf.matMul(tf.cast(onehot, 'float32'), wte), positions(g2('transformer.wpe.weight'), n, s)) as tf.Tensor2D;
  const headDim = m.d / m.heads;
  for (let l = 0; l < m.layers; l++) {
    const h = `transformer.h.${l}`;
    const a = layerNorm(x, g1(`${h}.ln_1.weight`), g1(`${h}.ln_1.bias`), EPS);
    const [q, k, v] = tf.split(dense(a, g2(`${h}.attn.c_attn.weight`), g1(`${h}.attn.c_attn.bias`)), 3, 1) as tf.Tensor2D[];
    const att = attention(q, k, v, { batch: n, seq: s, heads: m.heads, kvHeads: m.heads, headDim }, { causal: true });
    x = tf.add(x, dense(att, g2(`${h}.attn.c_proj.weight`), g1(`${h}.attn.c_proj.bias`))) as tf.Tensor2D;
    const f = layerNorm(x, g1(`${h}.ln_2.weight`), g1(`${h}.ln_2.bias`), EPS);
    const hid = gelu(dense(f, g2(`${h}.mlp.c_fc.weight`), g1(`${h}.mlp.c_fc.bias`)), 'tanh');
    x = tf.add(x, dense(hid, g2(`${h}.mlp.c_proj.weight`), g1(`${h}.mlp.c_proj.bias`))) as tf.Tensor2D;
  }
  const out = layerNorm(x, g1('transformer.ln_f.weight'), g1('transformer.ln_f.bias'), EPS);
  return tf.matMul(out, wte, false, true);
}

/**
 * Trains a tiny GPT-2 from seed `seed` on token data [n, t] (mini-batches of `batch` sequences,
 * Adam) and returns its weights by Hugging Face name, with the last training loss.
 */
export async function trainTinyGpt2(m: TinyGpt2, data: { ids: Int32Array; n: number; t: number }, o: { seed: number; steps: number; batch: number; lr: number }): Promise<{ weights: Map<string, RefTensor>; loss: number }> {
  const init = randomGpt2({ layers: m.layers, d: m.d, vocab: m.vocab, positions: m.positions, lmHead: false, seed: o.seed });
  const vars = new Map<string, tf.Variable>();
  for (const [name, t] of init) {
    // Small embeddings train faster than the reference's uniform(-1, 1).
    const scale = /w[tp]e\.weight$/.test(name) ? 0.1 : 1;
    vars.set(name, tf.variable(tf.tensor(t.data.map((v) => v * scale), [...t.shape])));
  }
  const opt = tf.train.adam(o.lr);
  const rand = mulberry32(o.seed + 1000);
  const { n, t } = data;
  let last = NaN;
  for (let step = 0; step < o.steps; step++) {
    const rows = Array.from({ length: o.batch }, () => Math.floor(rand() * n));
    const batch = new Int32Array(o.batch * t);
    rows.forEach((r, i) => batch.set(data.ids.subarray(r * t, (r + 1) * t), i * t));
    const cost = opt.minimize(() => {
      const ids = tf.tensor2d(batch, [o.batch, t], 'int32');
      const logits = tf.reshape(forward(vars, ids, m), [o.batch, t, m.vocab]);
      const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [o.batch, t - 1, m.vocab]), [-1, m.vocab]);
      const target = tf.reshape(tf.slice(ids, [0, 1], [o.batch, t - 1]), [-1]);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(target, m.vocab), pred) as tf.Scalar;
    }, true);
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

/** Writes `weights` as a Hugging Face GPT-2 folder (config.json, model.safetensors) at `dir`. */
export async function writeGpt2Folder(dir: string, m: TinyGpt2, weights: ReadonlyMap<string, RefTensor>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], activation_function: 'gelu_new', layer_norm_epsilon: EPS,
    n_embd: m.d, n_head: m.heads, n_layer: m.layers, n_positions: m.positions, n_inner: null, vocab_size: m.vocab, tie_word_embeddings: true,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeSafetensors(
    path.join(dir, 'model.safetensors'),
    [...weights].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, read: async () => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    { metadata: { format: 'pt' } },
  );
}
