/**
 * The forward pass of Vision Transformers in Hugging Face's `ViTForImageClassification` layout
 * (transformers' `modeling_vit.py`, eval mode): a patch-size conv with stride patch-size, the CLS
 * token in front, position embeddings added; pre-LN blocks (x + attn(LN(x)), then
 * x + mlp(LN(x))); the final LayerNorm; `classifier` on the CLS token. Images are N×C×H×W
 * (or flattened C·H·W, or N×H×W×C); H and W must be the size the position embeddings were
 * trained for (no interpolation, as transformers without `interpolate_pos_encoding`).
 * Heads, epsilon, activation and image size: the model config (config.json's keys, see
 * src/core/families/vit.ts); absent, the size follows the position embeddings (square grid).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import type { Activation, ModelConfig } from '../../core/families/modelConfig';
import { ModelError } from '../../core/families/modelErrors';
import { vitPrefix } from '../../core/families/vit';
import { activate, layerNorm, toNHWC, type ForwardOptions } from '../compute/layers';
import type { Model } from '../compute/model';
import { ParamStore } from '../compute/params';
import type { EngineFamily } from './family';

interface Linear {
  readonly w: tf.Tensor2D;
  readonly b?: tf.Tensor1D;
}

interface Norm {
  readonly g: tf.Tensor1D;
  readonly b?: tf.Tensor1D;
}

interface Block {
  readonly ln1: Norm;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly ln2: Norm;
  readonly fc: Linear;
  readonly out: Linear;
  /** The MLP's first weight: activation matching keys its units by it. */
  readonly fcName: string;
  /** The q, k, v and output projections' weights: activation matching keys the heads' features by them. */
  readonly names: { readonly q: string; readonly k: string; readonly v: string; readonly o: string };
}

/** x [n, s, in] · W + b -> [n, s, out]. */
function linear(x: tf.Tensor3D, l: Linear): tf.Tensor3D {
  const [n, s, d] = x.shape;
  let y: tf.Tensor = tf.matMul(tf.reshape(x, [n * s, d]), l.w);
  if (l.b) y = tf.add(y, l.b);
  return tf.reshape(y, [n, s, l.w.shape[1]]);
}

/**
 * Multi-head self-attention without a mask: softmax(q k^T / sqrt(d)) v per head, heads
 * concatenated. Activation matching sees q, k, v (laid out like their weights' output axes,
 * heads x head_dim) and the heads' output (like the output projection's input axis).
 */
function attention(x: tf.Tensor3D, blk: Block, heads: number, opts: ForwardOptions): tf.Tensor3D {
  const [n, s, width] = x.shape;
  const d = blk.q.w.shape[1] / heads;
  const split = (t: tf.Tensor3D): tf.Tensor4D => tf.transpose(tf.reshape(t, [n, s, heads, d]), [0, 2, 1, 3]);
  const [qf, kf, vf] = [linear(x, blk.q), linear(x, blk.k), linear(x, blk.v)];
  opts.onActivation?.(blk.names.q, qf);
  opts.onActivation?.(blk.names.k, kf);
  opts.onActivation?.(blk.names.v, vf);
  const p = tf.softmax(tf.div(tf.matMul(split(qf), split(kf), false, true), Math.sqrt(d)));
  const ctx = tf.reshape(tf.transpose(tf.matMul(p, split(vf)), [0, 2, 1, 3]), [n, s, heads * d]) as tf.Tensor3D;
  opts.onActivation?.(blk.names.o, ctx, 1);
  return linear(ctx, blk.o).reshape([n, s, width]);
}

/** The MLP's pre-activations [n, s, units] through the REPAIR hook (rows are tokens), when there is one. */
function repaired(pre: tf.Tensor3D, site: number, opts: ForwardOptions): tf.Tensor3D {
  if (!opts.repair) return pre;
  const [n, s, units] = pre.shape;
  return tf.reshape(opts.repair(site, tf.reshape(pre, [n * s, units])), [n, s, units]);
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

export function buildVit(tensors: TensorMap, config: ModelConfig): Model {
  const prefix = vitPrefix([...tensors].map(([name, t]) => ({ name, shape: t.shape }))) ?? '';
  const get = (name: string): DenseTensor => {
    const t = tensors.get(name);
    if (!t) throw new ModelError('Unsupported', `vit: \`${name}\` is missing`);
    return t;
  };
  const stream = `${prefix}embeddings.patch_embeddings.projection.weight`;
  const patch = get(stream);
  const [width, channels, ph, pw] = patch.shape;
  const positions = get(`${prefix}embeddings.position_embeddings`).shape[1] - 1;
  const heads = positiveInt(config.heads);
  if (heads === undefined) throw new ModelError('Unsupported', 'vit: the number of attention heads is not known: add "num_attention_heads" to config.json beside the checkpoint, or "heads" to <checkpoint>.rebasin.json');
  if (width % heads !== 0) throw new ModelError('ConfigInvalid', `vit: ${heads} attention heads do not divide the width ${width}`);
  if (typeof config.hiddenAct === 'string') throw new ModelError('Unsupported', `vit: hidden_act "${config.hiddenAct}" (config.json) has no forward pass here (gelu, relu, tanh, sigmoid do)`);
  const act: Activation = config.activation ?? 'gelu';
  // ViTConfig's default; PyTorch's LayerNorm default (1e-5) would be another model.
  const eps = config.eps ?? 1e-12;
  const side = Math.round(Math.sqrt(positions));
  const inputShape = config.inputShape ? [...config.inputShape] : [channels, side * ph, side * pw];
  const [c, h, w] = inputShape;
  if (inputShape.length !== 3 || c !== channels || h % ph !== 0 || w % pw !== 0 || (h / ph) * (w / pw) !== positions) {
    throw new ModelError('ShapeMismatch', `vit: input [${inputShape.join(', ')}] does not fit ${channels} channels in ${ph}x${pw} patches and ${positions} position embeddings`);
  }

  const store = new ParamStore();
  let stem: { w: tf.Tensor4D; b?: tf.Tensor1D; cls: tf.Tensor1D; pos: tf.Tensor1D };
  const blocks: Block[] = [];
  let final: Norm;
  let head: Linear;
  try {
    const bias = (name: string): tf.Tensor1D | undefined => {
      const b = tensors.get(`${name}.bias`);
      return b && store.vector(b);
    };
    const lin = (name: string): Linear => ({ w: store.linearWeight(`${name}.weight`, get(`${name}.weight`)), b: bias(name) });
    const norm = (name: string): Norm => ({ g: store.vector(get(`${name}.weight`)), b: bias(name) });
    stem = { w: store.convWeight(stream, patch), b: bias(`${prefix}embeddings.patch_embeddings.projection`), cls: store.vector(get(`${prefix}embeddings.cls_token`)), pos: store.vector(get(`${prefix}embeddings.position_embeddings`)) };
    for (let l = 0; tensors.has(`${prefix}encoder.layer.${l}.attention.attention.query.weight`); l++) {
      const at = `${prefix}encoder.layer.${l}`;
      blocks.push({
        ln1: norm(`${at}.layernorm_before`),
        q: lin(`${at}.attention.attention.query`),
        k: lin(`${at}.attention.attention.key`),
        v: lin(`${at}.attention.attention.value`),
        o: lin(`${at}.attention.output.dense`),
        ln2: norm(`${at}.layernorm_after`),
        fc: lin(`${at}.intermediate.dense`),
        out: lin(`${at}.output.dense`),
        fcName: `${at}.intermediate.dense.weight`,
        names: { q: `${at}.attention.attention.query.weight`, k: `${at}.attention.attention.key.weight`, v: `${at}.attention.attention.value.weight`, o: `${at}.attention.output.dense.weight` },
      });
    }
    final = norm(`${prefix}layernorm`);
    if (!tensors.has('classifier.weight')) throw new ModelError('Unsupported', 'vit: no `classifier` (a ViTModel without a classification head has no logits to evaluate)');
    head = lin('classifier');
  } catch (e) {
    store.dispose();
    throw e;
  }

  const forward = (x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D =>
    tf.tidy(() => {
      const img = toNHWC(x, channels, inputShape);
      if (img.shape[1] !== h || img.shape[2] !== w) {
        throw new ModelError('ShapeMismatch', `vit: images are ${img.shape[1]}x${img.shape[2]} but the model takes ${h}x${w}`);
      }
      const n = img.shape[0];
      let patches: tf.Tensor = tf.conv2d(img, stem.w, [ph, pw], 'valid');
      if (stem.b) patches = tf.add(patches, stem.b);
      // Row-major over the patch grid, as PyTorch's flatten(2).transpose(1, 2).
      const seq = tf.reshape(patches, [n, positions, width]);
      let s = tf.add(tf.concat([tf.tile(tf.reshape(stem.cls, [1, 1, width]), [n, 1, 1]), seq], 1), tf.reshape(stem.pos, [1, positions + 1, width])) as tf.Tensor3D;
      // The residual stream: its permutation is the patch projection's output axis.
      opts.onActivation?.(stream, s);
      for (const [site, blk] of blocks.entries()) {
        s = tf.add(s, attention(layerNorm(s, blk.ln1.g, blk.ln1.b, eps) as tf.Tensor3D, blk, heads, opts));
        const hidden = activate(repaired(linear(layerNorm(s, blk.ln2.g, blk.ln2.b, eps) as tf.Tensor3D, blk.fc), site, opts), act) as tf.Tensor3D;
        opts.onActivation?.(blk.fcName, hidden);
        s = tf.add(s, linear(hidden, blk.out));
        opts.onActivation?.(stream, s);
      }
      const first = tf.squeeze(tf.slice(layerNorm(s, final.g, final.b, eps), [0, 0, 0], [n, 1, width]), [1]) as tf.Tensor2D;
      const logits = tf.matMul(first, head.w);
      return (head.b ? tf.add(logits, head.b) : logits) as tf.Tensor2D;
    });
  return {
    family: 'vit',
    inputShape,
    classes: head.w.shape[1],
    batchNormLayers: [],
    forward,
    setBatchNormStats: (l, m, v) => store.setBatchNormStats(l, m, v),
    dispose: () => store.dispose(),
  };
}

export const vit: EngineFamily = { id: 'vit', buildClassifier: buildVit };
