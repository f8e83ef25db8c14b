/**
 * Llama-naming decoders as `transformers` runs them (LlamaForCausalLM and its relatives):
 * RMSNorm, rotary positions (rope_theta and rope_scaling, see rope.ts), grouped-query causal
 * attention (`num_key_value_heads`), explicit `head_dim`, a gated MLP (SwiGLU with SiLU), and
 * logits through `lm_head` or the tied `embed_tokens`.
 * Relatives: Mistral (the same blocks; a sliding window longer than the sequence changes
 * nothing), Qwen2 (q/k/v biases, read when present), Qwen3 (per-head q/k RMSNorm), Gemma
 * (RMSNorm scaling by 1 + weight, embeddings scaled by sqrt(hidden), tanh-GELU gate).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';
import { attention, dense, embed, rmsNorm, TransformerWeights } from './blocks';
import type { LmArchitecture } from './architecture';
import type { LmConfig } from './config';
import { activate, checkBlocks, checkSequence, expectShape, fullLogits, headsText, namePrefix, runBlocks, type LmFeatureHooks, type LmModel } from './layers';
import { ropeInvFreq, ropeTables } from './rope';

/**
 * The MLP of a Llama-style block: the gated MLP (below), or Mixtral's experts (mixtral.ts) in a
 * decoder that is otherwise Llama's.
 */
export interface DecoderMlp<M> {
  /** Block `i`'s MLP weights (names under `layer`, e.g. `model.layers.3`), uploaded through `w`. */
  build(w: TransformerWeights, layer: string, i: number): M;
  /** The MLP's output on the normalised rows `m` [tokens, width]; `features` get its hidden units. */
  run(m: tf.Tensor2D, block: M, i: number, features?: LmFeatureHooks): tf.Tensor2D;
  /** Words for the model's description, e.g. "4 experts of 96 units (top 2)". */
  readonly description?: string;
}

type Linear = readonly [tf.Tensor2D, tf.Tensor1D | undefined];

/** The gated MLP (SwiGLU with SiLU; Gemma's tanh-GELU gate). */
function gatedMlp(config: LmConfig): DecoderMlp<{ readonly gate: Linear; readonly up: Linear; readonly down: Linear }> {
  const lin = (w: TransformerWeights, name: string): Linear => [w.linear(`${name}.weight`), w.optionalVector(`${name}.bias`)];
  return {
    build: (w, l) => ({ gate: lin(w, `${l}.mlp.gate_proj`), up: lin(w, `${l}.mlp.up_proj`), down: lin(w, `${l}.mlp.down_proj`) }),
    run(m, b, i, features) {
      // SwiGLU: the hidden units are down_proj's input, SiLU(gate) x up.
      const units = tf.mul(activate(dense(m, ...b.gate), config.act), dense(m, ...b.up)) as tf.Tensor2D;
      const hid = features?.repair ? features.repair(i, units) : units;
      features?.mlp?.(i, hid);
      return dense(hid, ...b.down);
    },
  };
}

export function buildLlama(tensors: TensorMap, config: LmConfig, weights: string): LmModel {
  return buildLlamaDecoder(tensors, config, weights, gatedMlp(config));
}

/** A Llama-style decoder whose blocks' MLP is `mlp`. */
export function buildLlamaDecoder<M>(tensors: TensorMap, config: LmConfig, weights: string, mlp: DecoderMlp<M>): LmModel {
  const p = namePrefix(tensors, config, weights);
  const { hidden: d, vocab, heads, kvHeads, headDim, eps } = config;
  for (const n of tensors.keys()) {
    if (/_layernorm\.bias$/.test(n) || /\.(pre|post)_feedforward_layernorm\./.test(n)) {
      throw new ModelError('Unsupported', `${weights}: \`${n}\`: norms with a bias or around the MLP (Gemma 2 style) are not in the Llama forward pass`, weights);
    }
  }
  checkBlocks(tensors, `${p}layers.`, config, weights);
  const embName = `${p}embed_tokens.weight`;
  expectShape(tensors, embName, [vocab, d], weights, config);
  for (let i = 0; i < config.layers; i++) {
    const l = `${p}layers.${i}.self_attn`;
    expectShape(tensors, `${l}.q_proj.weight`, [heads * headDim, d], weights, config);
    expectShape(tensors, `${l}.k_proj.weight`, [kvHeads * headDim, d], weights, config);
    expectShape(tensors, `${l}.v_proj.weight`, [kvHeads * headDim, d], weights, config);
    expectShape(tensors, `${l}.o_proj.weight`, [d, heads * headDim], weights, config);
  }
  const untiedHead = !config.tied;
  // Built from shapes, a token classifier's `score` is the output head.
  const headName = config.fromShapes && !tensors.has('lm_head.weight') && tensors.has('score.weight') ? 'score' : 'lm_head';
  if (untiedHead && !tensors.has(`${headName}.weight`)) {
    throw new ModelError('Unsupported', `${weights}: \`lm_head.weight\` is missing and ${config.file} says "tie_word_embeddings": false (or does not say, and false is the default for ${config.modelType})`, weights);
  }
  const rope = config.rope!;
  const w = new TransformerWeights(tensors);
  try {
    // Gemma's RMSNorm multiplies by (1 + weight): fold the 1 in once.
    const normWeight = (name: string): tf.Tensor1D => (config.gemma ? w.own(tf.tidy(() => tf.add(w.vector(name), 1) as tf.Tensor1D)) : w.vector(name));
    const emb = w.matrix(embName);
    const lin = (name: string) => [w.linear(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
    const blocks = Array.from({ length: config.layers }, (_, i) => {
      const l = `${p}layers.${i}`;
      const qk = w.has(`${l}.self_attn.q_norm.weight`) ? { q: normWeight(`${l}.self_attn.q_norm.weight`), k: normWeight(`${l}.self_attn.k_norm.weight`), eps } : undefined;
      return {
        inNorm: normWeight(`${l}.input_layernorm.weight`),
        q: lin(`${l}.self_attn.q_proj`),
        k: lin(`${l}.self_attn.k_proj`),
        v: lin(`${l}.self_attn.v_proj`),
        o: lin(`${l}.self_attn.o_proj`),
        qk,
        postNorm: normWeight(`${l}.post_attention_layernorm.weight`),
        mlp: mlp.build(w, l, i),
      };
    });
    const norm = normWeight(`${p}norm.weight`);
    const head = untiedHead ? w.linear(`${headName}.weight`) : w.own(tf.tidy(() => tf.transpose(emb)));
    const headBias = untiedHead ? w.optionalVector(`${headName}.bias`) : undefined;
    // Gemma multiplies embeddings by sqrt(hidden) rounded to the weights' dtype (float32 here).
    const embScale = config.gemma ? Math.fround(Math.sqrt(d)) : 1;
    const ropeText = rope.invFreq ? `rotary from \`${rope.invFreq.tensor}\`` : rope.type === 'default' ? `rotary base ${rope.theta}` : `rotary base ${rope.theta}, ${rope.type} scaling x${rope.factor}`;
    const headText = !untiedHead ? `logits through the tied \`${embName}\`` : headName === 'score' ? 'a per-token `score` classifier' : 'logits through `lm_head`';
    const model: LmModel = {
      config,
      description:
        `${config.modelType}: ${config.layers} layers, width ${d}, ${headsText(config)}, ${mlp.description ? `${mlp.description}, ` : ''}${ropeText}, ${headText}`,
      hidden(ids, features) {
        const [n, s] = ids.shape;
        checkSequence(s, config);
        const tables = ropeTables(ropeInvFreq(rope, headDim, s, config.maxPositions), s);
        const cos = tf.tensor4d(tables.cos, [1, s, 1, headDim]);
        const sin = tf.tensor4d(tables.sin, [1, s, 1, headDim]);
        try {
          const x0 = tf.tidy(() => (embScale === 1 ? embed(emb, ids) : (tf.mul(embed(emb, ids), embScale) as tf.Tensor2D)));
          features?.residual?.(-1, x0);
          const x = runBlocks(x0, blocks, (x, b, i) => {
            const a = rmsNorm(x, b.inNorm, eps);
            const [q, k, v] = [dense(a, ...b.q), dense(a, ...b.k), dense(a, ...b.v)];
            const att = attention(q, k, v, { batch: n, seq: s, heads, kvHeads, headDim }, { causal: true, rotary: { cos, sin }, qkNorm: b.qk });
            features?.attention?.(i, { q, k, v, out: att });
            const r = tf.add(x, dense(att, ...b.o)) as tf.Tensor2D;
            features?.residual?.(i - 0.5, r);
            const y = tf.add(r, mlp.run(rmsNorm(r, b.postNorm, eps), b.mlp, i, features)) as tf.Tensor2D;
            features?.residual?.(i, y);
            return y;
          });
          const out = tf.tidy(() => rmsNorm(x, norm, eps));
          x.dispose();
          return out;
        } finally {
          cos.dispose();
          sin.dispose();
        }
      },
      head: (rows) => dense(rows, head, headBias),
      logits: (ids) => fullLogits(model, ids),
      output: (ids) => fullLogits(model, ids),
      dispose: () => w.dispose(),
    };
    return model;
  } catch (e) {
    w.dispose();
    throw e;
  }
}

/** The Llama family as it gives itself to the generic LM code. */
export const llamaLm: LmArchitecture = {
  build: buildLlama,
  featureSources(p, i) {
    const l = `${p}layers.${i}`;
    return {
      residual: [`${p}embed_tokens.weight`, 1],
      mlp: [`${l}.mlp.down_proj.weight`, 1],
      out: [`${l}.self_attn.o_proj.weight`, 1],
      q: [`${l}.self_attn.q_proj.weight`, 0],
      k: [`${l}.self_attn.k_proj.weight`, 0],
      v: [`${l}.self_attn.v_proj.weight`, 0],
    };
  },
  // REPAIR: each block's gated units SiLU(gate) x up (down_proj's input). A scale s of unit j is
  // up_proj's row j (and bias j) times s; a shift t goes through down_proj into its bias (b + W t),
  // which only configs with `mlp_bias` have: without it the units are rescaled only.
  repairSites: (p, config) =>
    Array.from({ length: config.layers }, (_, l) => {
      const mlp = `${p}layers.${l}.mlp`;
      return { scale: [[`${mlp}.up_proj.weight`, 0], [`${mlp}.up_proj.bias`, 0]], shift: { through: `${mlp}.down_proj.weight`, axis: 1, bias: `${mlp}.down_proj.bias` } };
    }),
  parameterCount(config, raw) {
    const { hidden: d, vocab: v, heads: h, kvHeads: kv, headDim: hd, layers: l } = config;
    const f = config.intermediate ?? 4 * d;
    const q = h * hd;
    const k = kv * hd;
    // Qwen2 has q/k/v biases, Qwen3 per-head q/k norms; Llama biases when `attention_bias` / `mlp_bias`.
    const qkvBias = config.modelType === 'qwen2' ? q + 2 * k : raw.attentionBias ? q + 2 * k + d : 0;
    const qkNorm = config.modelType === 'qwen3' ? 2 * hd : 0;
    const block = 2 * d + d * q + 2 * d * k + q * d + qkvBias + qkNorm + 3 * d * f + (raw.mlpBias ? 2 * f + d : 0);
    return v * d + l * block + d + (config.tied ? 0 : v * d);
  },
};
