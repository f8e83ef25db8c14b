/**
 * Forward passes for the transformer namings spec inference knows (core/spec/inferTransformer):
 * - GPT-2: learned positions, pre-LN blocks, Conv1D weights stored [in, out], causal attention,
 *   tanh GELU, `ln_f`, logits through `lm_head` or the tied `wte`.
 * - Llama: RMSNorm, rotary positions (rotate-half), grouped-query causal attention, SwiGLU MLP,
 *   logits through `lm_head` / `score` or the tied `embed_tokens`. Optional q/k/v/o biases
 *   (Qwen2) and per-head q/k norms (Qwen3).
 * - BERT: post-LN encoder with word + position + token-type (0) embeddings, bidirectional
 *   attention; the output is the first head present: sequence classifier on the pooler, token
 *   classifier / QA head, MLM logits, pooler output, else the final hidden states.
 * Input: token ids int32 [n, s]. Output: [n, s, out] per token, or [n, out] for pooled heads.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import { detectTransformer, type TransformerKind } from '../../core/spec/inferTransformer';
import { ModelError } from './modelErrors';
import { resolveHeads, type HeadCount, type TransformerOptions } from './transformerConfig';
import { attention, defaultInvFreq, dense, embed, gelu, layerNorm, positions, rmsNorm, rotaryTables, silu, TransformerWeights } from './transformerLayers';

export type { TransformerOptions } from './transformerConfig';

/** What `forward` returns. */
export type TransformerOutput = 'logits' | 'classifier' | 'token-classifier' | 'pooled' | 'hidden';

export interface TransformerModel {
  readonly kind: TransformerKind;
  /** Name prefix before the family's naming (`transformer.`, `model.`, `bert.`, or empty). */
  readonly prefix: string;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Token ids run from 0 to vocab - 1. */
  readonly vocab: number;
  /** Rows of the learned position table (the longest sequence), when there is one. */
  readonly maxPositions?: number;
  readonly output: TransformerOutput;
  /**
   * When the output's last axis is the residual stream (final hidden states): a tensor axis that
   * carries the same permutation, so a check can line B's outputs up with pi(B)'s.
   */
  readonly outputAxis?: { readonly tensor: string; readonly axis: number };
  /** One line: kind, sizes, and the choices made (head count source, tied head, output). */
  readonly description: string;
  /** ids int32 [n, s] -> [n, s, out] or [n, out]. Call inside tf.tidy (or dispose the result). */
  forward(ids: tf.Tensor2D): tf.Tensor;
  dispose(): void;
}

/** Builds the forward pass of a GPT-2, Llama or BERT state dict. */
export function buildTransformer(tensors: TensorMap, opts: TransformerOptions = {}): TransformerModel {
  const found = detectTransformer([...tensors.entries()].map(([name, t]) => ({ name, shape: [...t.shape] })));
  if (!found) throw new ModelError('Unsupported', 'transformer: no GPT-2 (`h.N.attn.c_attn`), Llama (`layers.N.self_attn.q_proj`) or BERT (`encoder.layer.N.attention.self.query`) blocks found');
  const w = new TransformerWeights(tensors);
  try {
    switch (found.kind) {
      case 'gpt2':
        return buildGpt2(w, tensors, found.prefix, opts);
      case 'llama':
        return buildLlama(w, tensors, found.prefix, opts);
      case 'bert':
        return buildBert(w, tensors, found.prefix, opts);
    }
  } catch (e) {
    w.dispose();
    throw e;
  }
}

/** Number of blocks `<prefix><block>N.` present (N = 0, 1, ... without gaps). */
function countBlocks(tensors: TensorMap, blockPrefix: string): number {
  const seen = new Set<number>();
  for (const name of tensors.keys()) {
    if (!name.startsWith(blockPrefix)) continue;
    const m = /^(\d+)\./.exec(name.slice(blockPrefix.length));
    if (m) seen.add(Number(m[1]));
  }
  for (let i = 0; i < seen.size; i++) if (!seen.has(i)) throw new ModelError('Unsupported', `transformer: block \`${blockPrefix}${i}\` is missing (blocks ${[...seen].sort((a, b) => a - b).join(', ')})`);
  if (seen.size === 0) throw new ModelError('Unsupported', `transformer: no \`${blockPrefix}N\` blocks`);
  return seen.size;
}

function headsText(h: HeadCount, kvHeads = h.heads): string {
  return `${h.heads} heads${kvHeads !== h.heads ? ` (${kvHeads} key/value)` : ''} of ${h.headDim} (${h.source})`;
}

function checkSeq(s: number, max: number | undefined, table: string): void {
  if (max !== undefined && s > max) throw new ModelError('ShapeMismatch', `transformer: sequence length ${s} exceeds the ${max} rows of \`${table}\``);
}

// ---------------------------------------------------------------- GPT-2

function buildGpt2(w: TransformerWeights, tensors: TensorMap, p: string, opts: TransformerOptions): TransformerModel {
  const eps = opts.eps ?? 1e-5;
  const act = opts.gelu ?? 'tanh';
  const wteName = `${p}wte.weight`;
  const wte = w.matrix(wteName);
  const wpe = w.matrix(`${p}wpe.weight`);
  const [vocab, d] = wte.shape;
  const L = countBlocks(tensors, `${p}h.`);
  const attnWidth = w.dense(`${p}h.0.attn.c_attn.weight`, 2).shape[1] / 3;
  const hc = resolveHeads('gpt2', attnWidth, opts);
  const blocks = Array.from({ length: L }, (_, i) => {
    const h = `${p}h.${i}`;
    return {
      ln1: [w.vector(`${h}.ln_1.weight`), w.optionalVector(`${h}.ln_1.bias`)] as const,
      attn: [w.matrix(`${h}.attn.c_attn.weight`), w.optionalVector(`${h}.attn.c_attn.bias`)] as const,
      proj: [w.matrix(`${h}.attn.c_proj.weight`), w.optionalVector(`${h}.attn.c_proj.bias`)] as const,
      ln2: [w.vector(`${h}.ln_2.weight`), w.optionalVector(`${h}.ln_2.bias`)] as const,
      fc: [w.matrix(`${h}.mlp.c_fc.weight`), w.optionalVector(`${h}.mlp.c_fc.bias`)] as const,
      out: [w.matrix(`${h}.mlp.c_proj.weight`), w.optionalVector(`${h}.mlp.c_proj.bias`)] as const,
    };
  });
  const lnf = [w.vector(`${p}ln_f.weight`), w.optionalVector(`${p}ln_f.bias`)] as const;
  const tied = !w.has('lm_head.weight');
  // Hugging Face files usually omit the lm_head tied to wte.
  const head = tied ? w.own(tf.tidy(() => tf.transpose(wte))) : w.linear('lm_head.weight');
  const maxPositions = wpe.shape[0];
  const forward = (ids: tf.Tensor2D): tf.Tensor =>
    tf.tidy(() => {
      const [n, s] = ids.shape;
      checkSeq(s, maxPositions, `${p}wpe.weight`);
      let x = tf.add(embed(wte, ids), positions(wpe, n, s)) as tf.Tensor2D;
      for (const b of blocks) {
        const a = layerNorm(x, b.ln1[0], b.ln1[1], eps);
        const [q, k, v] = tf.split(dense(a, b.attn[0], b.attn[1]), 3, 1) as tf.Tensor2D[];
        const att = attention(q, k, v, { batch: n, seq: s, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim }, { causal: true });
        x = tf.add(x, dense(att, b.proj[0], b.proj[1]));
        const m = layerNorm(x, b.ln2[0], b.ln2[1], eps);
        x = tf.add(x, dense(gelu(dense(m, b.fc[0], b.fc[1]), act), b.out[0], b.out[1]));
      }
      x = layerNorm(x, lnf[0], lnf[1], eps);
      return tf.reshape(tf.matMul(x, head), [n, s, -1]);
    });
  return {
    kind: 'gpt2', prefix: p, layers: L, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim, vocab, maxPositions, output: 'logits',
    description: `gpt2: ${L} layers, width ${d}, ${headsText(hc)}, logits through ${tied ? `the tied \`${wteName}\`` : '`lm_head`'}`,
    forward,
    dispose: () => w.dispose(),
  };
}

// ---------------------------------------------------------------- Llama

function buildLlama(w: TransformerWeights, tensors: TensorMap, p: string, opts: TransformerOptions): TransformerModel {
  const eps = opts.eps ?? 1e-5;
  const embName = `${p}embed_tokens.weight`;
  const emb = w.matrix(embName);
  const [vocab, d] = emb.shape;
  const L = countBlocks(tensors, `${p}layers.`);
  const l0 = `${p}layers.0`;
  for (const n of tensors.keys()) {
    if (/_layernorm\.bias$/.test(n) || /\.(pre|post)_feedforward_layernorm\./.test(n)) {
      throw new ModelError('Unsupported', `transformer: \`${n}\`: norms with a bias or around the mlp (Gemma-style) are not in the Llama forward pass`);
    }
  }
  const qWidth = w.dense(`${l0}.self_attn.q_proj.weight`, 2).shape[0];
  const kWidth = w.dense(`${l0}.self_attn.k_proj.weight`, 2).shape[0];
  // A tensor that shows head_dim: rotary inv_freq (head_dim / 2 entries) or Qwen3's q_norm.
  const freqName = [`${l0}.self_attn.rotary_emb.inv_freq`, `${p}rotary_emb.inv_freq`].find((n) => w.has(n));
  const qNormName = `${l0}.self_attn.q_norm.weight`;
  const shown = freqName ? { headDim: 2 * w.dense(freqName, 1).shape[0], tensor: freqName } : w.has(qNormName) ? { headDim: w.dense(qNormName, 1).shape[0], tensor: qNormName } : undefined;
  const hc = resolveHeads('llama', qWidth, opts, shown);
  const kvHeads = kWidth / hc.headDim;
  if (!Number.isInteger(kvHeads) || hc.heads % kvHeads !== 0) {
    throw new ModelError('ShapeMismatch', `transformer: k_proj width ${kWidth} is not a whole number of key/value heads dividing ${hc.heads} heads of ${hc.headDim}`);
  }
  if (opts.kvHeads !== undefined && opts.kvHeads !== kvHeads) {
    throw new ModelError('ConfigInvalid', `model config: kvHeads ${opts.kvHeads} does not match k_proj's width ${kWidth} (${kvHeads} heads of ${hc.headDim})`);
  }
  if (hc.headDim % 2 !== 0) throw new ModelError('Unsupported', `transformer: rotary embeddings need an even head_dim, got ${hc.headDim}`);
  const invFreq = freqName ? w.dense(freqName, 1).data : defaultInvFreq(hc.headDim, opts.ropeTheta ?? 10000);
  const lin = (name: string) => [w.linear(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
  const blocks = Array.from({ length: L }, (_, i) => {
    const l = `${p}layers.${i}`;
    const qk = w.has(`${l}.self_attn.q_norm.weight`) ? { q: w.vector(`${l}.self_attn.q_norm.weight`), k: w.vector(`${l}.self_attn.k_norm.weight`), eps } : undefined;
    return {
      inNorm: w.vector(`${l}.input_layernorm.weight`),
      q: lin(`${l}.self_attn.q_proj`), k: lin(`${l}.self_attn.k_proj`), v: lin(`${l}.self_attn.v_proj`), o: lin(`${l}.self_attn.o_proj`),
      qk,
      postNorm: w.vector(`${l}.post_attention_layernorm.weight`),
      gate: lin(`${l}.mlp.gate_proj`), up: lin(`${l}.mlp.up_proj`), down: lin(`${l}.mlp.down_proj`),
    };
  });
  const norm = w.vector(`${p}norm.weight`);
  const headName = w.has('lm_head.weight') ? 'lm_head' : w.has('score.weight') ? 'score' : undefined;
  const head = headName ? w.linear(`${headName}.weight`) : w.own(tf.tidy(() => tf.transpose(emb)));
  const headBias = headName ? w.optionalVector(`${headName}.bias`) : undefined;
  const forward = (ids: tf.Tensor2D): tf.Tensor =>
    tf.tidy(() => {
      const [n, s] = ids.shape;
      const rot = rotaryTables(invFreq, s);
      let x = embed(emb, ids);
      for (const b of blocks) {
        const a = rmsNorm(x, b.inNorm, eps);
        const att = attention(dense(a, ...b.q), dense(a, ...b.k), dense(a, ...b.v), { batch: n, seq: s, heads: hc.heads, kvHeads, headDim: hc.headDim }, { causal: true, rotary: rot, qkNorm: b.qk });
        x = tf.add(x, dense(att, ...b.o));
        const m = rmsNorm(x, b.postNorm, eps);
        x = tf.add(x, dense(tf.mul(silu(dense(m, ...b.gate)), dense(m, ...b.up)), ...b.down));
      }
      return tf.reshape(dense(rmsNorm(x, norm, eps), head, headBias), [n, s, -1]);
    });
  const headText = headName === 'score' ? 'a per-token `score` classifier' : headName ? 'logits through `lm_head`' : `logits through the tied \`${embName}\``;
  return {
    kind: 'llama', prefix: p, layers: L, heads: hc.heads, kvHeads, headDim: hc.headDim, vocab, output: headName === 'score' ? 'token-classifier' : 'logits',
    description: `llama: ${L} layers, width ${d}, ${headsText(hc, kvHeads)}, rotary ${freqName ? `from \`${freqName}\`` : `base ${opts.ropeTheta ?? 10000}`}, ${headText}`,
    forward,
    dispose: () => w.dispose(),
  };
}

// ---------------------------------------------------------------- BERT

function buildBert(w: TransformerWeights, tensors: TensorMap, p: string, opts: TransformerOptions): TransformerModel {
  const eps = opts.eps ?? 1e-12;
  const act = opts.gelu ?? 'exact';
  // Old TF-converted checkpoints name LayerNorm parameters gamma / beta.
  const norm = (name: string) => [w.vector(w.has(`${name}.weight`) ? `${name}.weight` : `${name}.gamma`), w.optionalVector(w.has(`${name}.bias`) ? `${name}.bias` : `${name}.beta`)] as const;
  const lin = (name: string) => [w.linear(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
  const e = `${p}embeddings`;
  const wordName = `${e}.word_embeddings.weight`;
  const word = w.matrix(wordName);
  const pos = w.matrix(`${e}.position_embeddings.weight`);
  // Every token has type 0: row 0 of the token-type table.
  const typeTable = w.has(`${e}.token_type_embeddings.weight`) ? w.matrix(`${e}.token_type_embeddings.weight`) : undefined;
  const typeRow = typeTable ? w.own(tf.tidy(() => tf.reshape(tf.slice(typeTable, [0, 0], [1, -1]), [-1]) as tf.Tensor1D)) : undefined;
  const embNorm = norm(`${e}.LayerNorm`);
  const [vocab, d] = word.shape;
  const L = countBlocks(tensors, `${p}encoder.layer.`);
  const hc = resolveHeads('bert', w.dense(`${p}encoder.layer.0.attention.self.query.weight`, 2).shape[0], opts);
  const blocks = Array.from({ length: L }, (_, i) => {
    const l = `${p}encoder.layer.${i}`;
    return {
      q: lin(`${l}.attention.self.query`), k: lin(`${l}.attention.self.key`), v: lin(`${l}.attention.self.value`),
      o: lin(`${l}.attention.output.dense`), ln1: norm(`${l}.attention.output.LayerNorm`),
      fc: lin(`${l}.intermediate.dense`), out: lin(`${l}.output.dense`), ln2: norm(`${l}.output.LayerNorm`),
    };
  });
  const pooler = w.has(`${p}pooler.dense.weight`) ? lin(`${p}pooler.dense`) : undefined;
  // The output: the first head present, in the order Hugging Face's task models use them.
  type Head =
    | { kind: 'classifier'; lin: ReturnType<typeof lin>; what: string }
    | { kind: 'token-classifier'; lin: ReturnType<typeof lin>; what: string }
    | { kind: 'mlm'; transform: ReturnType<typeof lin>; ln: ReturnType<typeof norm>; decoder: tf.Tensor2D; bias?: tf.Tensor1D; what: string }
    | { kind: 'pooled'; what: string }
    | { kind: 'hidden'; what: string };
  let head: Head;
  const headName = ['classifier', 'qa_outputs'].find((n) => w.has(`${n}.weight`));
  if (headName === 'classifier' && pooler) head = { kind: 'classifier', lin: lin('classifier'), what: 'sequence classifier on the pooler' };
  else if (headName) head = { kind: 'token-classifier', lin: lin(headName), what: `token classifier \`${headName}\`` };
  else if (w.has('cls.predictions.transform.dense.weight')) {
    const tiedDecoder = !w.has('cls.predictions.decoder.weight');
    head = {
      kind: 'mlm',
      transform: lin('cls.predictions.transform.dense'),
      ln: norm('cls.predictions.transform.LayerNorm'),
      decoder: tiedDecoder ? w.own(tf.tidy(() => tf.transpose(word))) : w.linear('cls.predictions.decoder.weight'),
      bias: w.optionalVector(w.has('cls.predictions.bias') ? 'cls.predictions.bias' : 'cls.predictions.decoder.bias'),
      what: `masked-lm logits${tiedDecoder ? ` through the tied \`${wordName}\`` : ''}`,
    };
  } else if (pooler) head = { kind: 'pooled', what: 'the pooler output' };
  else head = { kind: 'hidden', what: 'the final hidden states' };
  const maxPositions = pos.shape[0];
  const lastNorm = `${p}encoder.layer.${L - 1}.output.LayerNorm`;
  const forward = (ids: tf.Tensor2D): tf.Tensor =>
    tf.tidy(() => {
      const [n, s] = ids.shape;
      checkSeq(s, maxPositions, `${e}.position_embeddings.weight`);
      let x = tf.add(embed(word, ids), positions(pos, n, s)) as tf.Tensor2D;
      if (typeRow) x = tf.add(x, typeRow);
      x = layerNorm(x, embNorm[0], embNorm[1], eps);
      for (const b of blocks) {
        const att = attention(dense(x, ...b.q), dense(x, ...b.k), dense(x, ...b.v), { batch: n, seq: s, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim }, { causal: false });
        x = layerNorm(tf.add(x, dense(att, ...b.o)), b.ln1[0], b.ln1[1], eps);
        x = layerNorm(tf.add(x, dense(gelu(dense(x, ...b.fc), act), ...b.out)), b.ln2[0], b.ln2[1], eps);
      }
      const pooled = (): tf.Tensor2D => {
        const first = tf.reshape(tf.slice(tf.reshape(x, [n, s, -1]), [0, 0, 0], [n, 1, -1]), [n, -1]) as tf.Tensor2D;
        return tf.tanh(dense(first, ...pooler!));
      };
      switch (head.kind) {
        case 'classifier':
          return dense(pooled(), ...head.lin);
        case 'token-classifier':
          return tf.reshape(dense(x, ...head.lin), [n, s, -1]);
        case 'mlm': {
          const t = layerNorm(gelu(dense(x, ...head.transform), act), head.ln[0], head.ln[1], eps);
          return tf.reshape(dense(t, head.decoder, head.bias), [n, s, -1]);
        }
        case 'pooled':
          return pooled();
        case 'hidden':
          return tf.reshape(x, [n, s, -1]);
      }
    });
  const output: TransformerOutput = head.kind === 'mlm' ? 'logits' : head.kind;
  return {
    kind: 'bert', prefix: p, layers: L, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim, vocab, maxPositions, output,
    ...(head.kind === 'hidden' ? { outputAxis: { tensor: w.has(`${lastNorm}.weight`) ? `${lastNorm}.weight` : `${lastNorm}.gamma`, axis: 0 } } : {}),
    description: `bert: ${L} layers, width ${d}, ${headsText(hc)}, output: ${head.what}`,
    forward,
    dispose: () => w.dispose(),
  };
}
