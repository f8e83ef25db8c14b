/**
 * GPT-2 (Radford et al. 2019) as `transformers`' GPT2LMHeadModel: token + learned position
 * embeddings, pre-LN blocks whose Conv1D weights are stored [in, out] with q|k|v packed in
 * `c_attn`, causal attention, the MLP activation of `activation_function`, `ln_f`, and logits
 * through `lm_head` or (tied, usually absent from the file) the transposed `wte`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';
import { addPositions, attention, dense, embed, layerNorm, TransformerWeights } from './blocks';
import type { LmArchitecture } from './architecture';
import type { LmConfig } from './config';
import { activate, checkBlocks, checkSequence, expectShape, fullLogits, headsText, namePrefix, runBlocks, type LmModel } from './layers';

export function buildGpt2(tensors: TensorMap, config: LmConfig, weights: string): LmModel {
  const p = namePrefix(tensors, config, weights);
  const { hidden: d, vocab, maxPositions, heads, headDim, eps } = config;
  checkBlocks(tensors, `${p}h.`, config, weights);
  expectShape(tensors, `${p}wte.weight`, [vocab, d], weights, config);
  expectShape(tensors, `${p}wpe.weight`, [maxPositions, d], weights, config);
  for (let i = 0; i < config.layers; i++) expectShape(tensors, `${p}h.${i}.attn.c_attn.weight`, [d, 3 * d], weights, config);
  const untiedHead = !config.tied;
  if (untiedHead && !tensors.has('lm_head.weight')) {
    throw new ModelError('Unsupported', `${weights}: \`lm_head.weight\` is missing and ${config.file} says "tie_word_embeddings": false`, weights);
  }
  const w = new TransformerWeights(tensors);
  try {
    const wte = w.matrix(`${p}wte.weight`);
    const wpe = w.matrix(`${p}wpe.weight`);
    const pair = (name: string) => [w.matrix(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
    const norm = (name: string) => [w.vector(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
    const blocks = Array.from({ length: config.layers }, (_, i) => {
      const h = `${p}h.${i}`;
      return { ln1: norm(`${h}.ln_1`), attn: pair(`${h}.attn.c_attn`), proj: pair(`${h}.attn.c_proj`), ln2: norm(`${h}.ln_2`), fc: pair(`${h}.mlp.c_fc`), out: pair(`${h}.mlp.c_proj`) };
    });
    const lnf = norm(`${p}ln_f`);
    // Tied: Hugging Face ties lm_head to wte whatever the file holds (GPT2LMHeadModel._tied_weights_keys).
    const head = untiedHead ? w.linear('lm_head.weight') : w.own(tf.tidy(() => tf.transpose(wte)));
    // The attention divides scores by sqrt(head_dim); GPT-2's options change that factor, applied to q.
    const qScale = (layer: number): number => (config.scaleAttnWeights ? 1 : Math.sqrt(headDim)) / (config.scaleAttnByLayer ? layer + 1 : 1);
    const model: LmModel = {
      config,
      description: `gpt2: ${config.layers} layers, width ${d}, ${headsText(config)}, ${maxPositions} positions, logits through ${untiedHead ? '`lm_head`' : `the tied \`${p}wte.weight\``}`,
      hidden(ids, features) {
        const [n, s] = ids.shape;
        checkSequence(s, config);
        const x0 = tf.tidy(() => addPositions(embed(wte, ids), wpe, n, s));
        features?.residual?.(-1, x0);
        const x = runBlocks(x0, blocks, (x, b, i) => {
          const a = layerNorm(x, b.ln1[0], b.ln1[1], eps);
          const [q, k, v] = tf.split(dense(a, b.attn[0], b.attn[1]), 3, 1) as tf.Tensor2D[];
          const scale = qScale(i);
          const qs = scale === 1 ? q : (tf.mul(q, scale) as tf.Tensor2D);
          const att = attention(qs, k, v, { batch: n, seq: s, heads, kvHeads: heads, headDim }, { causal: true });
          features?.attention?.(i, { q, k, v, out: att });
          const r = tf.add(x, dense(att, b.proj[0], b.proj[1])) as tf.Tensor2D;
          features?.residual?.(i - 0.5, r);
          const m = layerNorm(r, b.ln2[0], b.ln2[1], eps);
          const fc = dense(m, b.fc[0], b.fc[1]);
          const pre = features?.repair ? features.repair(i, fc) : fc;
          const hid = activate(pre, config.act);
          features?.mlp?.(i, hid);
          const y = tf.add(r, dense(hid, b.out[0], b.out[1])) as tf.Tensor2D;
          features?.residual?.(i, y);
          return y;
        });
        const out = tf.tidy(() => layerNorm(x, lnf[0], lnf[1], eps));
        x.dispose();
        return out;
      },
      head: (rows) => tf.matMul(rows, head),
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

/** GPT-2 as its family gives it to the generic LM code. */
export const gpt2Lm: LmArchitecture = {
  build: buildGpt2,
  featureSources(p, i) {
    const h = `${p}h.${i}`;
    // Conv1D weights are [in, out]; c_attn packs q | k | v on its output axis.
    return {
      residual: [`${p}wte.weight`, 1],
      mlp: [`${h}.mlp.c_proj.weight`, 0],
      out: [`${h}.attn.c_proj.weight`, 0],
      q: [`${h}.attn.c_attn.weight`, 1, 0],
      k: [`${h}.attn.c_attn.weight`, 1, 1],
      v: [`${h}.attn.c_attn.weight`, 1, 2],
    };
  },
  parameterCount(config) {
    const { hidden: d, vocab: v, layers: l } = config;
    const f = config.intermediate ?? 4 * d;
    const block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
    return v * d + config.maxPositions * d + l * block + 2 * d + (config.tied ? 0 : v * d);
  },
  // REPAIR: each block's MLP pre-activations, the output of Conv1D `c_fc` [in, out] (column j and bias j are unit j).
  repairSites: (p, config) =>
    Array.from({ length: config.layers }, (_, l) => {
      const fc = `${p}h.${l}.mlp.c_fc`;
      return { scale: [[`${fc}.weight`, 1], [`${fc}.bias`, 0]], shift: { bias: `${fc}.bias` } };
    }),
};
