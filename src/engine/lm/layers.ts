/**
 * What the LM forward passes share beyond the transformer building blocks of
 * blocks.ts: the model interface, checks of weights against config.json,
 * activations, and one block at a time under its own tidy (so a block's intermediates, T x T
 * attention scores included, are freed before the next block runs).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import { CORE_FAMILIES, coreFamily } from '../../core/families/registry';
import { ModelError } from '../../core/families/modelErrors';
import { gelu, silu } from './blocks';
import type { LmActivation, LmConfig } from './config';

/** A language model's forward pass on tfjs. */
export interface LmModel {
  readonly config: LmConfig;
  /** One line: family, sizes, the choices made (tied head, rotary scaling). */
  readonly description: string;
  /**
   * Final hidden states of ids int32 [n, T], as token rows [n x T, width]: after the final norm
   * (causal LMs) or the masked-LM transform (BERT), i.e. what the output head multiplies.
   */
  hidden(ids: tf.Tensor2D, features?: LmFeatureHooks): tf.Tensor2D;
  /** Logits of hidden rows [r, width]: [r, vocab]. */
  head(rows: tf.Tensor2D): tf.Tensor2D;
  /** ids int32 [n, T] -> logits [n, T, vocab]. */
  logits(ids: tf.Tensor2D): tf.Tensor3D;
  /**
   * What the checkpoint's own head computes on ids int32 [n, T] (the equivalence check): the
   * logits, or for a config built from shapes whichever head the weights hold ([n, T, out] per
   * token, [n, out] pooled).
   */
  output(ids: tf.Tensor2D): tf.Tensor;
  /**
   * When the output's last axis is the residual stream (a headless BERT's hidden states): a
   * tensor axis that carries the same permutation, so B's outputs can be lined up with pi(B)'s.
   */
  readonly outputAxis?: { readonly tensor: string; readonly axis: number };
  dispose(): void;
}

/**
 * Intermediate features for activation matching, token rows [n x T, units], called synchronously
 * inside the forward pass's tidy (read them at once or tf.keep them). Each is a sample of one
 * permuted set of units: the residual stream (GPT-2 and Llama: after the embeddings, layer -1,
 * after each attention and each block; BERT: the post-LayerNorm states, the same points), each
 * block's MLP hidden units (the down projection's input: after the activation, Llama's
 * SiLU(gate) x up), and each block's attention. The hooks only read tensors the pass computes
 * anyway: a pass without hooks runs as before.
 */
export interface LmFeatureHooks {
  residual?(layer: number, x: tf.Tensor2D): void;
  mlp?(layer: number, hidden: tf.Tensor2D): void;
  /** Each block's attention features (see LmAttentionFeatures). */
  attention?(layer: number, f: LmAttentionFeatures): void;
  /**
   * REPAIR (repair.ts): the units at the family's REPAIR site `site` (numbered as its
   * `repairSites` lists them, LmArchitecture), replaced in the pass by what the hook returns
   * (the same tensor to only read them).
   */
  repair?(site: number, units: tf.Tensor2D): tf.Tensor2D;
  /**
   * Mixture of experts: each block's experts' hidden units (w2's input) on every token, laid out
   * like the stacked w2's input [tokens, experts x units] (core/moe/expertStack.ts).
   */
  experts?(layer: number, hidden: tf.Tensor2D): void;
}

/**
 * One block's attention, token rows: the projections as the weights give them (before rotary
 * positions, q/k norms or GPT-2's score scaling), q [tokens, heads x head_dim], k and v
 * [tokens, kv_heads x head_dim], and the heads' outputs before the output projection
 * [tokens, heads x head_dim], laid out like the output projection's input.
 */
export interface LmAttentionFeatures {
  readonly q: tf.Tensor2D;
  readonly k: tf.Tensor2D;
  readonly v: tf.Tensor2D;
  readonly out: tf.Tensor2D;
}

/** The name prefix before the family's naming (`transformer.`, `model.`, `bert.`, or empty), checked against config.json. */
export function namePrefix(tensors: TensorMap, config: LmConfig, weights: string): string {
  const shapes = [...tensors.entries()].map(([name, t]) => ({ name, shape: [...t.shape] }));
  // The first language-model naming the weights show, in registry order.
  for (const f of CORE_FAMILIES) {
    const prefix = f.lm?.prefix(shapes) ?? null;
    if (prefix === null) continue;
    if (f.id !== config.family) {
      throw new ModelError('ConfigInvalid', `${weights}: config.json says model_type "${config.modelType}" but the weights are named like ${f.id}`, weights);
    }
    return prefix;
  }
  throw new ModelError('Unsupported', `${weights}: no blocks of the ${coreFamily(config.family).label} found`, weights);
}

/** Checks the blocks `<blockPrefix>0 .. L-1` are there, L from config.json. */
export function checkBlocks(tensors: TensorMap, blockPrefix: string, config: LmConfig, weights: string): void {
  const seen = new Set<number>();
  for (const name of tensors.keys()) {
    if (!name.startsWith(blockPrefix)) continue;
    const m = /^(\d+)\./.exec(name.slice(blockPrefix.length));
    if (m) seen.add(Number(m[1]));
  }
  for (let i = 0; i < config.layers; i++) {
    if (!seen.has(i)) throw new ModelError('ShapeMismatch', `${weights}: block \`${blockPrefix}${i}\` is missing (config.json has ${config.layers} layers)`, weights);
  }
  if (seen.size > config.layers) {
    throw new ModelError('ShapeMismatch', `${weights}: ${seen.size} blocks \`${blockPrefix}N\` but config.json has ${config.layers} layers`, weights);
  }
}

/** Throws unless tensor `name` has `shape` (what config.json implies). */
export function expectShape(tensors: TensorMap, name: string, shape: readonly number[], weights: string, config: LmConfig): void {
  const t = tensors.get(name);
  if (!t) throw new ModelError('Unsupported', `${weights}: \`${name}\` is missing`, weights);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ModelError('ShapeMismatch', `${weights}: \`${name}\` is [${t.shape.join(', ')}] but ${config.file} implies [${shape.join(', ')}]`, weights);
  }
}

export function activate<T extends tf.Tensor>(x: T, act: LmActivation): T {
  switch (act) {
    case 'gelu':
      return gelu(x, 'exact');
    case 'gelu_tanh':
      return gelu(x, 'tanh');
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return silu(x);
  }
}

/** Runs `step` on each block in turn, each under its own tidy; the input is disposed when replaced. */
export function runBlocks<B>(x: tf.Tensor2D, blocks: readonly B[], step: (x: tf.Tensor2D, block: B, index: number) => tf.Tensor2D): tf.Tensor2D {
  let cur = x;
  blocks.forEach((b, i) => {
    const next = tf.tidy(() => step(cur, b, i));
    cur.dispose();
    cur = next;
  });
  return cur;
}

/** Logits [n, T, vocab] from `hidden` and `head` (for tests and small batches). */
export function fullLogits(model: Pick<LmModel, 'hidden' | 'head'>, ids: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, s] = ids.shape;
    return tf.reshape(model.head(model.hidden(ids)), [n, s, -1]) as tf.Tensor3D;
  });
}

/** "4 heads (2 key/value) of 16", with where the count came from when the config was built from shapes. */
export function headsText(config: LmConfig): string {
  const { heads, kvHeads, headDim } = config;
  return `${heads} heads${kvHeads !== heads ? ` (${kvHeads} key/value)` : ''} of ${headDim}${config.fromShapes ? ` (${config.fromShapes.headsSource})` : ''}`;
}

export function checkSequence(s: number, config: LmConfig): void {
  if (s > config.maxPositions) {
    throw new ModelError('ShapeMismatch', `sequence length ${s} exceeds the model's ${config.maxPositions} positions (${config.file})`, config.file);
  }
  if (config.slidingWindow !== undefined && s > config.slidingWindow) {
    throw new ModelError('Unsupported', `sequence length ${s} exceeds the sliding attention window ${config.slidingWindow} of ${config.file}: use sequences of at most ${config.slidingWindow} tokens`, config.file);
  }
}
