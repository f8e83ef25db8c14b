/**
 * Mixtral (MixtralForCausalLM) as `transformers` runs it: Llama's decoder (llama.ts: RMSNorm,
 * rotary positions, grouped-query attention) with a sparse mixture-of-experts MLP in each block:
 *   router probabilities p = softmax(gate x) (float32), the top `num_experts_per_tok` of them
 *   renormalised to sum to 1, and out = sum over the chosen experts e of p_e . w2_e(SiLU(w1_e x) * w3_e x).
 * Every expert runs on every token and the unchosen ones are weighted 0: exact, simple, and
 * E / top-k times the work of routing (the models we evaluate are small next to their data).
 * Experts are read as stored (`experts.E.w1`) or stacked (`experts.*.w1`, core/moe/expertStack.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { expertMember, stackedName, type ExpertProjection } from '../../core/moe/expertStack';
import { ModelError } from '../../core/families/modelErrors';
import type { LmArchitecture } from './architecture';
import { dense } from './blocks';
import type { LmConfig } from './config';
import { activate, expectShape, type LmModel } from './layers';
import { buildLlamaDecoder, llamaLm, type DecoderMlp } from './llama';
import { mixtralExpertAxes } from './mixtralFeatures';
import { mixtralMlpValuesPerToken, mixtralParameterCount } from './mixtralMemory';

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
function moe(m: tf.Tensor2D, gate: tf.Tensor2D, experts: readonly Expert[], topK: number, config: LmConfig, hidden?: (h: tf.Tensor2D) => void, repair?: (e: number, units: tf.Tensor2D) => tf.Tensor2D): tf.Tensor2D {
  const weights = routingWeights(dense(m, gate), topK);
  let out: tf.Tensor2D | undefined;
  const hids: tf.Tensor2D[] = [];
  experts.forEach((x, e) => {
    // One expert's intermediates at a time (the running sum, and its hidden units for the hook, stay).
    const [sum, hid] = tf.tidy(() => {
      const units = tf.mul(activate(dense(m, x.w1), config.act), dense(m, x.w3)) as tf.Tensor2D;
      const h = repair ? repair(e, units) : units;
      const y = tf.mul(dense(h, x.w2), tf.slice(weights, [0, e], [-1, 1])) as tf.Tensor2D;
      return [out ? (tf.add(out, y) as tf.Tensor2D) : y, ...(hidden ? [h] : [])];
    });
    out?.dispose();
    out = sum;
    if (hid) hids.push(hid);
  });
  weights.dispose();
  if (hidden) {
    hidden(tf.concat(hids, 1));
    for (const h of hids) h.dispose();
  }
  return out!;
}

/**
 * Mixtral: Llama's decoder (llama.ts) with the experts as each block's MLP; each block's router
 * and experts are checked against config.json as they are uploaded.
 */
export function buildMixtral(tensors: TensorMap, config: LmConfig, weights: string): LmModel {
  const moeConfig = config.experts;
  if (!moeConfig) throw new ModelError('ConfigInvalid', `${config.file}: no "num_local_experts" for a mixture-of-experts model`, config.file);
  const { count, topK } = moeConfig;
  const d = config.hidden;
  const f = config.intermediate!;
  const member = (l: string, e: number, w: ExpertProjection): DenseTensor => {
    const experts = `${l}.block_sparse_moe.experts`;
    const t = expertMember(tensors, experts, e, count, w);
    const shape = w === 'w2' ? [d, f] : [f, d];
    if (!t) throw new ModelError('Unsupported', `${weights}: \`${experts}.${e}.${w}.weight\` is missing (config.json has ${count} experts per layer)`, weights);
    if (t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      throw new ModelError('ShapeMismatch', `${weights}: \`${experts}.${e}.${w}.weight\` is [${t.shape.join(', ')}] but ${config.file} implies [${shape.join(', ')}]`, weights);
    }
    return t;
  };
  const mlp: DecoderMlp<{ readonly gate: tf.Tensor2D; readonly experts: readonly Expert[] }> = {
    description: `${count} experts of ${f} units (top ${topK})`,
    build(w, l) {
      expectShape(tensors, `${l}.block_sparse_moe.gate.weight`, [count, d], weights, config);
      // Expert matrices come from either naming (as stored or stacked), so they are made here rather than by name.
      const linear = (t: DenseTensor): tf.Tensor2D => w.own(tf.tidy(() => tf.transpose(tf.tensor2d(t.data, [t.shape[0], t.shape[1]]))));
      return {
        gate: w.linear(`${l}.block_sparse_moe.gate.weight`),
        experts: Array.from({ length: count }, (_, e): Expert => ({ w1: linear(member(l, e, 'w1')), w2: linear(member(l, e, 'w2')), w3: linear(member(l, e, 'w3')) })),
      };
    },
    run: (m, b, i, features) => {
      const hook = features?.experts;
      const repair = features?.repair;
      return moe(m, b.gate, b.experts, topK, config, hook && ((h) => hook(i, h)), repair && ((e, u) => repair(i * count + e, u)));
    },
  };
  return buildLlamaDecoder(tensors, config, weights, mlp);
}

/**
 * The Mixtral family as it gives itself to the generic LM code: Llama's feature tensors (its
 * attention is Llama's; no dense MLP, so the experts' units come through `expertFeatureAxes`),
 * its parameters and per-token MLP values for the memory plan (mixtralMemory.ts).
 */
export const mixtralLm: LmArchitecture = {
  build: buildMixtral,
  featureSources: llamaLm.featureSources,
  parameterCount: mixtralParameterCount,
  mlpValuesPerToken: mixtralMlpValuesPerToken,
  expertFeatureAxes: mixtralExpertAxes,
  // REPAIR per expert (site block x experts + expert): its units SiLU(w1 x) x w3 x, on every token
  // (every expert runs on every token here), rescaled through w3's rows (stored, or expert e's rows
  // e x units of the stacked w3); experts have no biases, so no shift.
  repairSites(p, config, tensors) {
    const count = config.experts?.count ?? 0;
    const f = config.intermediate ?? 0;
    return Array.from({ length: config.layers * count }, (_, site) => {
      const experts = `${p}layers.${Math.floor(site / count)}.block_sparse_moe.experts`;
      const e = site % count;
      const stacked = stackedName(experts, 'w3');
      return { scale: [tensors.has(stacked) ? [stacked, 0, e * f] : [`${experts}.${e}.w3.weight`, 0]] };
    });
  },
};
