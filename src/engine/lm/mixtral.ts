/**
 * Mixtral (MixtralForCausalLM) as `transformers` runs it: Llama's attention (RMSNorm, rotary
 * positions, grouped-query attention) with a sparse mixture-of-experts MLP in each block:
 *   router probabilities p = softmax(gate x) (float32), the top `num_experts_per_tok` of them
 *   renormalised to sum to 1, and out = sum over the chosen experts e of p_e . w2_e(SiLU(w1_e x) * w3_e x).
 * Every expert runs on every token and the unchosen ones are weighted 0: exact, simple, and
 * E / top-k times the work of routing (the models we evaluate are small next to their data).
 * Experts are read as stored (`experts.E.w1`) or stacked (`experts.*.w1`, core/moe/expertStack.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { expertMember, type ExpertProjection } from '../../core/moe/expertStack';
import { ModelError } from '../compute/modelErrors';
import { attention, dense, embed, rmsNorm, TransformerWeights } from '../compute/transformerLayers';
import type { LmConfig } from './config';
import { activate, checkBlocks, checkSequence, expectShape, fullLogits, namePrefix, runBlocks, type LmModel } from './layers';
import { ropeInvFreq, ropeTables } from './rope';

interface Expert {
  readonly w1: tf.Tensor2D;
  readonly w2: tf.Tensor2D;
  readonly w3: tf.Tensor2D;
}

/**
 * Routing weights [tokens, E]: softmax over the router's logits, the top k kept and
 * renormalised, every other expert 0 (MixtralSparseMoeBlock).
 */
export function routingWeights(logits: tf.Tensor2D, topK: number): tf.Tensor2D {
  return tf.tidy(() => {
    const probs = tf.softmax(logits);
    const { values, indices } = tf.topk(probs, topK);
    const e = logits.shape[1];
    const chosen = tf.sum(tf.oneHot(indices, e), 1) as tf.Tensor2D; // [tokens, E] of 0 / 1
    const kept = tf.mul(probs, chosen);
    return tf.div(kept, tf.sum(values, 1, true)) as tf.Tensor2D;
  });
}

/**
 * The mixture-of-experts MLP of one block on normalised rows `m` [tokens, d]; `hidden`, when
 * given, receives every expert's hidden units side by side [tokens, E x units].
 */
function moe(m: tf.Tensor2D, gate: tf.Tensor2D, experts: readonly Expert[], topK: number, config: LmConfig, hidden?: (h: tf.Tensor2D) => void): tf.Tensor2D {
  const weights = routingWeights(dense(m, gate), topK);
  let out: tf.Tensor2D | undefined;
  const hids: tf.Tensor2D[] = [];
  experts.forEach((x, e) => {
    const hid = tf.mul(activate(dense(m, x.w1), config.act), dense(m, x.w3)) as tf.Tensor2D;
    if (hidden) hids.push(hid);
    const y = tf.mul(dense(hid, x.w2), tf.slice(weights, [0, e], [-1, 1])) as tf.Tensor2D;
    out = out ? (tf.add(out, y) as tf.Tensor2D) : y;
  });
  if (hidden) hidden(tf.concat(hids, 1));
  return out!;
}

export function buildMixtral(tensors: TensorMap, config: LmConfig, weights: string): LmModel {
  const p = namePrefix(tensors, config, weights);
  const { hidden: d, vocab, heads, kvHeads, headDim, eps } = config;
  const moeConfig = config.experts;
  if (!moeConfig) throw new ModelError('ConfigInvalid', `${config.file}: no "num_local_experts" for a mixture-of-experts model`, config.file);
  const { count, topK } = moeConfig;
  const f = config.intermediate!;
  checkBlocks(tensors, `${p}layers.`, config, weights);
  const embName = `${p}embed_tokens.weight`;
  expectShape(tensors, embName, [vocab, d], weights, config);
  const member = (i: number, e: number, w: ExpertProjection): DenseTensor => {
    const experts = `${p}layers.${i}.block_sparse_moe.experts`;
    const t = expertMember(tensors, experts, e, count, w);
    const shape = w === 'w2' ? [d, f] : [f, d];
    if (!t) throw new ModelError('Unsupported', `${weights}: \`${experts}.${e}.${w}.weight\` is missing (config.json has ${count} experts per layer)`, weights);
    if (t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      throw new ModelError('ShapeMismatch', `${weights}: \`${experts}.${e}.${w}.weight\` is [${t.shape.join(', ')}] but ${config.file} implies [${shape.join(', ')}]`, weights);
    }
    return t;
  };
  for (let i = 0; i < config.layers; i++) {
    const l = `${p}layers.${i}`;
    expectShape(tensors, `${l}.self_attn.q_proj.weight`, [heads * headDim, d], weights, config);
    expectShape(tensors, `${l}.self_attn.k_proj.weight`, [kvHeads * headDim, d], weights, config);
    expectShape(tensors, `${l}.self_attn.v_proj.weight`, [kvHeads * headDim, d], weights, config);
    expectShape(tensors, `${l}.self_attn.o_proj.weight`, [d, heads * headDim], weights, config);
    expectShape(tensors, `${l}.block_sparse_moe.gate.weight`, [count, d], weights, config);
  }
  if (!config.tied && !tensors.has('lm_head.weight')) {
    throw new ModelError('Unsupported', `${weights}: \`lm_head.weight\` is missing and ${config.file} says "tie_word_embeddings": false (or does not say, and false is the default for ${config.modelType})`, weights);
  }
  const rope = config.rope!;
  const w = new TransformerWeights(tensors);
  try {
    const emb = w.matrix(embName);
    // Expert matrices come from either naming, so they are made here rather than by name.
    const linear = (t: DenseTensor): tf.Tensor2D => w.own(tf.tidy(() => tf.transpose(tf.tensor2d(t.data, [t.shape[0], t.shape[1]]))));
    const blocks = Array.from({ length: config.layers }, (_, i) => {
      const l = `${p}layers.${i}`;
      return {
        inNorm: w.vector(`${l}.input_layernorm.weight`),
        q: w.linear(`${l}.self_attn.q_proj.weight`),
        k: w.linear(`${l}.self_attn.k_proj.weight`),
        v: w.linear(`${l}.self_attn.v_proj.weight`),
        o: w.linear(`${l}.self_attn.o_proj.weight`),
        postNorm: w.vector(`${l}.post_attention_layernorm.weight`),
        gate: w.linear(`${l}.block_sparse_moe.gate.weight`),
        experts: Array.from({ length: count }, (_, e): Expert => ({ w1: linear(member(i, e, 'w1')), w2: linear(member(i, e, 'w2')), w3: linear(member(i, e, 'w3')) })),
      };
    });
    const norm = w.vector(`${p}norm.weight`);
    const head = config.tied ? w.own(tf.tidy(() => tf.transpose(emb))) : w.linear('lm_head.weight');
    const model: LmModel = {
      config,
      description:
        `${config.modelType}: ${config.layers} layers, width ${d}, ${heads} heads${kvHeads !== heads ? ` (${kvHeads} key/value)` : ''} of ${headDim}, ` +
        `${count} experts of ${f} units (top ${topK}), rotary base ${rope.theta}, logits through ${config.tied ? `the tied \`${embName}\`` : '`lm_head`'}`,
      hidden(ids, features) {
        const [n, s] = ids.shape;
        checkSequence(s, config);
        const tables = ropeTables(ropeInvFreq(rope, headDim, s, config.maxPositions), s);
        const cos = tf.tensor4d(tables.cos, [1, s, 1, headDim]);
        const sin = tf.tensor4d(tables.sin, [1, s, 1, headDim]);
        try {
          const x0 = embed(emb, ids);
          features?.residual?.(-1, x0);
          const x = runBlocks(x0, blocks, (x, b, i) => {
            const a = rmsNorm(x, b.inNorm, eps);
            const [q, k, v] = [dense(a, b.q), dense(a, b.k), dense(a, b.v)];
            const att = attention(q, k, v, { batch: n, seq: s, heads, kvHeads, headDim }, { causal: true, rotary: { cos, sin } });
            features?.attention?.(i, { q, k, v, out: att });
            const r = tf.add(x, dense(att, b.o)) as tf.Tensor2D;
            features?.residual?.(i - 0.5, r);
            const hook = features?.experts;
            const y = tf.add(r, moe(rmsNorm(r, b.postNorm, eps), b.gate, b.experts, topK, config, hook && ((h) => hook(i, h)))) as tf.Tensor2D;
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
      head: (rows) => dense(rows, head),
      logits: (ids) => fullLogits(model, ids),
      dispose: () => w.dispose(),
    };
    return model;
  } catch (e) {
    w.dispose();
    throw e;
  }
}
