/**
 * Transformer building blocks in Hugging Face semantics on tfjs: token rows are kept flat as
 * [tokens, width] (tokens = batch x sequence) so every projection is one 2-d matMul against a
 * weight stored [in, out] (wasm's transposeB is slow, notes/COMPUTE.md); attention reshapes
 * to [batch x heads, seq, head_dim] and transposes explicitly.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';

/** Weights a `liveWeights` map carries: tfjs tensors the forward pass reads as they are. */
const LIVE = new WeakMap<TensorMap, ReadonlyMap<string, tf.Tensor>>();

/**
 * A weights map whose tensors are tfjs tensors (for example computed from tf.Variables inside a
 * gradient function): every family's build reads it like a checkpoint (names and shapes are
 * checked as usual), but its forward pass computes on these tensors without copying them, so
 * gradients flow to them. The tensors are borrowed: the model's `dispose()` leaves them alone.
 */
export function liveWeights(tensors: ReadonlyMap<string, tf.Tensor>): TensorMap {
  const map = new Map<string, DenseTensor>();
  for (const [name, t] of tensors) {
    map.set(name, {
      shape: t.shape,
      get data(): Float32Array {
        throw new Error(`transformer: \`${name}\` is a live tensor: its values are not read on the host`);
      },
    });
  }
  LIVE.set(map, tensors);
  return map;
}

/** The tfjs tensors of one model, uploaded once (or borrowed, see `liveWeights`); `dispose()` frees those it made. */
export class TransformerWeights {
  private readonly owned: tf.Tensor[] = [];
  private readonly live: ReadonlyMap<string, tf.Tensor> | undefined;
  constructor(private readonly tensors: TensorMap) {
    this.live = LIVE.get(tensors);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The checkpoint tensor `name`, with `rank` checked; a missing one is an Unsupported model. */
  dense(name: string, rank: number): DenseTensor {
    const t = this.tensors.get(name);
    if (!t) throw new ModelError('Unsupported', `transformer: \`${name}\` is missing`);
    if (t.shape.length !== rank) throw new ModelError('ShapeMismatch', `transformer: \`${name}\` must be ${rank}-d, got [${t.shape.join(', ')}]`);
    return t;
  }

  private keep<T extends tf.Tensor>(t: T): T {
    this.owned.push(t);
    return t;
  }

  /** The live tensor `name` (rank checked), when this model borrows its weights. */
  private borrowed(name: string, rank: number): tf.Tensor | undefined {
    if (!this.live) return undefined;
    this.dense(name, rank);
    return this.live.get(name);
  }

  /** PyTorch Linear weight [out, in] as [in, out]. */
  linear(name: string): tf.Tensor2D {
    const b = this.borrowed(name, 2);
    if (b) return this.keep(tf.transpose(b as tf.Tensor2D));
    const t = this.dense(name, 2);
    return this.keep(tf.tidy(() => tf.transpose(tf.tensor2d(t.data, [t.shape[0], t.shape[1]]))));
  }

  /** A matrix as stored: GPT-2 Conv1D [in, out], embedding tables [rows, width]. */
  matrix(name: string): tf.Tensor2D {
    const b = this.borrowed(name, 2);
    if (b) return b as tf.Tensor2D;
    const t = this.dense(name, 2);
    return this.keep(tf.tensor2d(t.data, [t.shape[0], t.shape[1]]));
  }

  vector(name: string): tf.Tensor1D {
    const b = this.borrowed(name, 1);
    if (b) return b as tf.Tensor1D;
    return this.keep(tf.tensor1d(this.dense(name, 1).data));
  }

  optionalVector(name: string): tf.Tensor1D | undefined {
    return this.has(name) ? this.vector(name) : undefined;
  }

  /** Takes ownership of a tensor built elsewhere (rotary tables). */
  own<T extends tf.Tensor>(t: T): T {
    return this.keep(t);
  }

  dispose(): void {
    for (const t of this.owned) if (!t.isDisposed) t.dispose();
    this.owned.length = 0;
  }
}

/** x [tokens, in] . W [in, out] (+ b). */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const y = tf.matMul(x, w) as tf.Tensor2D;
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

/** LayerNorm over the last axis (biased variance, as PyTorch). */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D | undefined, eps: number): tf.Tensor2D {
  const m = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, m.mean), tf.mul(tf.rsqrt(tf.add(m.variance, eps)), gamma));
  return (beta ? tf.add(y, beta) : y) as tf.Tensor2D;
}

/** RMSNorm (Llama): x / sqrt(mean(x^2) + eps) * gamma, over the last axis. */
export function rmsNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, eps: number): T {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gamma) as T;
}

export type GeluKind = 'exact' | 'tanh';

/**
 * GELU: exact x * Phi(x) (BERT's "gelu") or the tanh approximation (GPT-2's "gelu_new"),
 * 0.5 x (1 + tanh(z)) with z = sqrt(2/pi) (x + 0.044715 x^3), computed as x * sigmoid(2z) (the
 * same function: 0.5 (1 + tanh(z)) = sigmoid(2z)) with x^3 = x * x * x: tfjs's pow and tanh
 * kernels took a quarter of a GPT-2 forward pass (measured: 3.6x faster on wasm, 5x on native;
 * values within 1e-6 of the tanh form).
 */
export function gelu<T extends tf.Tensor>(x: T, kind: GeluKind): T {
  if (kind === 'exact') return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2))))) as T;
  const z2 = tf.mul(2 * Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))));
  return tf.mul(x, tf.sigmoid(z2)) as T;
}

/** SiLU (Llama's SwiGLU gate): x * sigmoid(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

/** Rows `ids` (int32 [n, s]) of an embedding table [rows, width], as [n x s, width]. */
export function embed(table: tf.Tensor2D, ids: tf.Tensor2D): tf.Tensor2D {
  return tf.gather(table, tf.reshape(ids, [-1]), 0) as tf.Tensor2D;
}

/**
 * Token rows x [n x s, width] plus rows 0..s-1 of a learned position table, broadcast over the n
 * sequences (the same sums as adding `positions`, without the tiled copy: measured 5% of a tiny
 * GPT-2's pass on wasm).
 */
export function addPositions(x: tf.Tensor2D, table: tf.Tensor2D, n: number, s: number): tf.Tensor2D {
  return tf.tidy(() => tf.reshape(tf.add(tf.reshape(x, [n, s, -1]), tf.slice(table, [0, 0], [s, -1])), [n * s, -1]) as tf.Tensor2D);
}

/** Rows 0..s-1 of a learned position table, repeated for each of the n sequences: [n x s, width]. */
export function positions(table: tf.Tensor2D, n: number, s: number): tf.Tensor2D {
  const rows = tf.slice(table, [0, 0], [s, -1]);
  return tf.reshape(tf.tile(tf.expandDims(rows, 0), [n, 1, 1]), [n * s, -1]) as tf.Tensor2D;
}

/**
 * Rotary tables (Su et al. 2021, Hugging Face's rotate-half layout): angle[p, e] = p * freq[e mod half]
 * for positions 0..seq-1; returns cos and sin, each [1, seq, 1, head_dim] to broadcast over heads.
 */
export function rotaryTables(invFreq: Float32Array | Float64Array, seq: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const half = invFreq.length;
  const hd = 2 * half;
  const c = new Float32Array(seq * hd);
  const s = new Float32Array(seq * hd);
  for (let p = 0; p < seq; p++) {
    for (let e = 0; e < hd; e++) {
      const ang = p * invFreq[e % half];
      c[p * hd + e] = Math.cos(ang);
      s[p * hd + e] = Math.sin(ang);
    }
  }
  return { cos: tf.tensor4d(c, [1, seq, 1, hd]), sin: tf.tensor4d(s, [1, seq, 1, hd]) };
}

/** Llama's default inverse frequencies: theta^(-2e / head_dim) for e < head_dim / 2. */
export function defaultInvFreq(headDim: number, theta: number): Float64Array {
  return Float64Array.from({ length: headDim / 2 }, (_, e) => theta ** (-(2 * e) / headDim));
}

/** x * cos + rotate_half(x) * sin on [n, s, heads, head_dim], rotate_half(x) = [-x2, x1]. */
function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

export interface AttentionShape {
  readonly batch: number;
  readonly seq: number;
  readonly heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`). */
  readonly kvHeads: number;
  readonly headDim: number;
}

export interface AttentionOptions {
  readonly causal: boolean;
  readonly rotary?: { readonly cos: tf.Tensor4D; readonly sin: tf.Tensor4D };
  /** Per-head RMSNorm of q and k before rotary (Qwen3's q_norm / k_norm). */
  readonly qkNorm?: { readonly q: tf.Tensor1D; readonly k: tf.Tensor1D; readonly eps: number };
}

/**
 * Scaled dot-product attention (Vaswani et al. 2017) on flat token rows: q [n x s, heads x hd],
 * k and v [n x s, kvHeads x hd]; query head h reads key/value head floor(h / (heads / kvHeads)).
 * Returns [n x s, heads x hd].
 */
export function attention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, sh: AttentionShape, opts: AttentionOptions): tf.Tensor2D {
  const { batch: n, seq: s, heads: H, kvHeads: KV, headDim: hd } = sh;
  let q4 = tf.reshape(q, [n, s, H, hd]) as tf.Tensor4D;
  let k4 = tf.reshape(k, [n, s, KV, hd]) as tf.Tensor4D;
  let v4 = tf.reshape(v, [n, s, KV, hd]) as tf.Tensor4D;
  if (opts.qkNorm) {
    q4 = rmsNorm(q4, opts.qkNorm.q, opts.qkNorm.eps);
    k4 = rmsNorm(k4, opts.qkNorm.k, opts.qkNorm.eps);
  }
  if (opts.rotary) {
    q4 = applyRotary(q4, opts.rotary.cos, opts.rotary.sin);
    k4 = applyRotary(k4, opts.rotary.cos, opts.rotary.sin);
  }
  if (KV !== H) {
    const group = H / KV;
    const idx = tf.tensor1d(Array.from({ length: H }, (_, h) => Math.floor(h / group)), 'int32');
    k4 = tf.gather(k4, idx, 2) as tf.Tensor4D;
    v4 = tf.gather(v4, idx, 2) as tf.Tensor4D;
  }
  const qh = tf.reshape(tf.transpose(q4, [0, 2, 1, 3]), [n * H, s, hd]) as tf.Tensor3D;
  const kT = tf.reshape(tf.transpose(k4, [0, 2, 3, 1]), [n * H, hd, s]) as tf.Tensor3D;
  const vh = tf.reshape(tf.transpose(v4, [0, 2, 1, 3]), [n * H, s, hd]) as tf.Tensor3D;
  let scores: tf.Tensor3D = tf.mul(tf.matMul(qh, kT), 1 / Math.sqrt(hd));
  if (opts.causal) scores = tf.add(scores, causalMask(s));
  const out = tf.matMul(tf.softmax(scores, -1), vh);
  return tf.reshape(tf.transpose(tf.reshape(out, [n, H, s, hd]), [0, 2, 1, 3]), [n * s, H * hd]) as tf.Tensor2D;
}

/** [s, s] additive mask: 0 where key j <= query i, a large negative number after it. */
function causalMask(s: number): tf.Tensor2D {
  const m = new Float32Array(s * s);
  for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) m[i * s + j] = -1e9;
  return tf.tensor2d(m, [s, s]);
}
