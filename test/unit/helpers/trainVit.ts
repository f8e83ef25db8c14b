/**
 * A tiny Vision Transformer in Hugging Face's `ViTForImageClassification` layout trained for real
 * (softmax cross-entropy, Adam: trainLm.ts's loop) on labelled images, for the comparison
 * table's ViT pair (bench/lmtable). The forward pass is written here on tf.Variables from the
 * project's building blocks so it is differentiable on the wasm backend; the patches are cut
 * from the images once, outside the gradient (a stride-`patch` convolution is a product of the
 * flattened patches with the projection). The folder written is read and run by the engine's
 * own ViT forward pass (src/engine/families/vit.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../../src/engine/gradients';
import type { Dataset } from '../../../src/core/data';
import { mulberry32 } from '../../../src/core/matching/prng';
import { attention, gelu, layerNorm } from '../../../src/engine/lm/blocks';
import type { RefTensor } from './lmReference';
import { getter, linear, train, type TrainOptions } from './trainLm';

export interface TinyVit {
  readonly layers: number;
  readonly d: number;
  readonly heads: number;
  readonly inter: number;
  readonly patch: number;
  readonly image: number;
  readonly channels: number;
  readonly classes: number;
}

const EPS = 1e-12;

/** Flattened patches [n x patches, channels x patch x patch] of images [n, channels, image, image], in the conv weight's (c, y, x) order, the grid row-major. */
function patchRows(x: Float32Array, n: number, m: TinyVit): Float32Array {
  const g = m.image / m.patch;
  const per = m.channels * m.patch * m.patch;
  const out = new Float32Array(n * g * g * per);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let py = 0; py < g; py++) {
      for (let px = 0; px < g; px++) {
        for (let c = 0; c < m.channels; c++) {
          for (let y = 0; y < m.patch; y++) {
            const row = ((i * m.channels + c) * m.image + py * m.patch + y) * m.image + px * m.patch;
            for (let xx = 0; xx < m.patch; xx++) out[o++] = x[row + xx];
          }
        }
      }
    }
  }
  return out;
}

/** He-uniform weights, unit norms, small embeddings, from a seeded PRNG. */
function initVit(m: TinyVit, seed: number): Map<string, RefTensor> {
  const r = mulberry32(seed);
  const w = new Map<string, RefTensor>();
  const add = (name: string, shape: number[], bound: number, offset = 0) =>
    w.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + (2 * r() - 1) * bound) });
  const lin = (name: string, out: number, inp: number) => {
    add(`${name}.weight`, [out, inp], Math.sqrt(6 / inp));
    add(`${name}.bias`, [out], 0.01);
  };
  const norm = (name: string) => {
    add(`${name}.weight`, [m.d], 0, 1);
    add(`${name}.bias`, [m.d], 0);
  };
  const tokens = (m.image / m.patch) ** 2 + 1;
  add('vit.embeddings.cls_token', [1, 1, m.d], 0.1);
  add('vit.embeddings.position_embeddings', [1, tokens, m.d], 0.1);
  const per = m.channels * m.patch * m.patch;
  add('vit.embeddings.patch_embeddings.projection.weight', [m.d, m.channels, m.patch, m.patch], Math.sqrt(6 / per));
  add('vit.embeddings.patch_embeddings.projection.bias', [m.d], 0.01);
  for (let l = 0; l < m.layers; l++) {
    const b = `vit.encoder.layer.${l}`;
    norm(`${b}.layernorm_before`);
    for (const p of ['query', 'key', 'value']) lin(`${b}.attention.attention.${p}`, m.d, m.d);
    lin(`${b}.attention.output.dense`, m.d, m.d);
    norm(`${b}.layernorm_after`);
    lin(`${b}.intermediate.dense`, m.inter, m.d);
    lin(`${b}.output.dense`, m.d, m.inter);
  }
  norm('vit.layernorm');
  lin('classifier', m.classes, m.d);
  return w;
}

/** Logits [n, classes] from patches [n x patches, per-patch values]. */
function vitLogits(w: ReadonlyMap<string, tf.Tensor>, patches: tf.Tensor2D, n: number, m: TinyVit): tf.Tensor2D {
  const g = getter(w);
  const s = (m.image / m.patch) ** 2 + 1;
  const ln = (x: tf.Tensor2D, name: string) => layerNorm(x, g.v(`${name}.weight`), g.v(`${name}.bias`), EPS);
  const lin = (x: tf.Tensor2D, name: string) => linear(x, g.m(`${name}.weight`), g.v(`${name}.bias`));
  const proj = tf.reshape(w.get('vit.embeddings.patch_embeddings.projection.weight')!, [m.d, -1]) as tf.Tensor2D;
  const embedded = tf.reshape(linear(patches, proj, g.v('vit.embeddings.patch_embeddings.projection.bias')), [n, s - 1, m.d]);
  const cls = tf.tile(tf.reshape(w.get('vit.embeddings.cls_token')!, [1, 1, m.d]), [n, 1, 1]);
  const seq = tf.add(tf.concat([cls, embedded], 1), w.get('vit.embeddings.position_embeddings')!);
  let x = tf.reshape(seq, [n * s, m.d]) as tf.Tensor2D;
  for (let l = 0; l < m.layers; l++) {
    const b = `vit.encoder.layer.${l}`;
    const a = ln(x, `${b}.layernorm_before`);
    const att = attention(lin(a, `${b}.attention.attention.query`), lin(a, `${b}.attention.attention.key`), lin(a, `${b}.attention.attention.value`), { batch: n, seq: s, heads: m.heads, kvHeads: m.heads, headDim: m.d / m.heads }, { causal: false });
    x = tf.add(x, lin(att, `${b}.attention.output.dense`));
    x = tf.add(x, lin(gelu(lin(ln(x, `${b}.layernorm_after`), `${b}.intermediate.dense`), 'exact'), `${b}.output.dense`));
  }
  const first = tf.reshape(tf.slice(tf.reshape(ln(x, 'vit.layernorm'), [n, s, m.d]), [0, 0, 0], [n, 1, m.d]), [n, m.d]) as tf.Tensor2D;
  return lin(first, 'classifier');
}

/** Trains a tiny ViT on `data` (images [n, channels x image x image] in any layout of that size, labels below `classes`). */
export function trainTinyVit(m: TinyVit, data: Dataset, o: TrainOptions): Promise<{ weights: Map<string, RefTensor>; loss: number }> {
  const patches = patchRows(data.x, data.n, m);
  const perImage = (m.image / m.patch) ** 2 * m.channels * m.patch * m.patch;
  // Labels as one-token rows: the loop draws rows; the images are read by their row numbers.
  return train(initVit(m, o.seed), { ids: data.y, n: data.n, t: 1 }, o, (w, labels, rows) => {
    const batch = new Float32Array(rows.length * perImage);
    rows.forEach((r, i) => batch.set(patches.subarray(r * perImage, (r + 1) * perImage), i * perImage));
    const logits = vitLogits(w, tf.tensor2d(batch, [rows.length * (m.image / m.patch) ** 2, perImage / ((m.image / m.patch) ** 2)]), rows.length, m);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(labels, [-1]) as tf.Tensor1D, m.classes), logits) as tf.Scalar;
  });
}

export function vitConfig(m: TinyVit): Record<string, unknown> {
  return {
    model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_act: 'gelu', hidden_size: m.d, intermediate_size: m.inter,
    num_attention_heads: m.heads, num_hidden_layers: m.layers, image_size: m.image, patch_size: m.patch, num_channels: m.channels,
    layer_norm_eps: EPS, qkv_bias: true, id2label: Object.fromEntries(Array.from({ length: m.classes }, (_, i) => [String(i), String(i)])),
  };
}
