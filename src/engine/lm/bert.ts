/**
 * BERT (Devlin et al. 2019) as `transformers`' BertForMaskedLM: word + learned position +
 * token-type-0 embeddings and a LayerNorm, post-LN encoder blocks with bidirectional attention
 * (an all-ones attention mask: every token sees every token), and the masked-LM head
 * `cls.predictions`: dense, `hidden_act`, LayerNorm, then the decoder tied to the word
 * embeddings (or `cls.predictions.decoder.weight` when untied) plus `cls.predictions.bias`.
 * Built from shapes (no config.json, the equivalence check), the output is the first head the
 * weights hold, in the order Hugging Face's task models use them: sequence classifier on the
 * pooler, token classifier / QA head, masked-LM logits, pooler output, else the hidden states.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import { ModelError } from '../../core/families/modelErrors';
import { addPositions, attention, dense, embed, layerNorm, TransformerWeights } from './blocks';
import type { LmArchitecture } from './architecture';
import type { LmConfig } from './config';
import { activate, checkBlocks, checkSequence, expectShape, fullLogits, headsText, namePrefix, runBlocks, type LmModel } from './layers';

type TaskHead = 'classifier' | 'token-classifier' | 'mlm' | 'pooled' | 'hidden';

/** The output head: the masked-LM head for a language model; built from shapes, the first the weights hold. */
function taskHead(tensors: TensorMap, config: LmConfig, p: string): { kind: TaskHead; name?: string } {
  if (!config.fromShapes) return { kind: 'mlm' };
  const pooler = tensors.has(`${p}pooler.dense.weight`);
  const name = ['classifier', 'qa_outputs'].find((n) => tensors.has(`${n}.weight`));
  if (name === 'classifier' && pooler) return { kind: 'classifier', name };
  if (name) return { kind: 'token-classifier', name };
  if (tensors.has('cls.predictions.transform.dense.weight')) return { kind: 'mlm' };
  return { kind: pooler ? 'pooled' : 'hidden' };
}

export function buildBert(tensors: TensorMap, config: LmConfig, weights: string): LmModel {
  const p = namePrefix(tensors, config, weights);
  const { hidden: d, vocab, maxPositions, heads, headDim, eps } = config;
  checkBlocks(tensors, `${p}encoder.layer.`, config, weights);
  const e = `${p}embeddings`;
  expectShape(tensors, `${e}.word_embeddings.weight`, [vocab, d], weights, config);
  expectShape(tensors, `${e}.position_embeddings.weight`, [maxPositions, d], weights, config);
  const task = taskHead(tensors, config, p);
  const mlm = task.kind === 'mlm';
  if (mlm && !tensors.has('cls.predictions.transform.dense.weight')) {
    throw new ModelError('Unsupported', `${weights}: no masked-LM head (\`cls.predictions.transform.dense.weight\`): save the model as BertForMaskedLM to evaluate it as a language model`, weights);
  }
  const untiedDecoder = !config.tied;
  if (mlm && untiedDecoder && !tensors.has('cls.predictions.decoder.weight')) {
    throw new ModelError('Unsupported', `${weights}: \`cls.predictions.decoder.weight\` is missing and ${config.file} says "tie_word_embeddings": false`, weights);
  }
  const w = new TransformerWeights(tensors);
  try {
    // Old TF-converted checkpoints name LayerNorm parameters gamma / beta.
    const norm = (name: string) => [w.vector(w.has(`${name}.weight`) ? `${name}.weight` : `${name}.gamma`), w.optionalVector(w.has(`${name}.bias`) ? `${name}.bias` : `${name}.beta`)] as const;
    const lin = (name: string) => [w.linear(`${name}.weight`), w.optionalVector(`${name}.bias`)] as const;
    const word = w.matrix(`${e}.word_embeddings.weight`);
    const pos = w.matrix(`${e}.position_embeddings.weight`);
    const typeName = `${e}.token_type_embeddings.weight`;
    // Every token has type 0: row 0 of the token-type table.
    const typeRow = w.has(typeName) ? w.own(tf.tidy(() => tf.reshape(tf.slice(w.matrix(typeName), [0, 0], [1, -1]), [-1]) as tf.Tensor1D)) : undefined;
    const embNorm = norm(`${e}.LayerNorm`);
    const blocks = Array.from({ length: config.layers }, (_, i) => {
      const l = `${p}encoder.layer.${i}`;
      return {
        q: lin(`${l}.attention.self.query`),
        k: lin(`${l}.attention.self.key`),
        v: lin(`${l}.attention.self.value`),
        o: lin(`${l}.attention.output.dense`),
        ln1: norm(`${l}.attention.output.LayerNorm`),
        fc: lin(`${l}.intermediate.dense`),
        out: lin(`${l}.output.dense`),
        ln2: norm(`${l}.output.LayerNorm`),
      };
    });
    const mlmHead = mlm
      ? {
          transform: lin('cls.predictions.transform.dense'),
          norm: norm('cls.predictions.transform.LayerNorm'),
          decoder: untiedDecoder ? w.linear('cls.predictions.decoder.weight') : w.own(tf.tidy(() => tf.transpose(word))),
          bias: w.optionalVector(w.has('cls.predictions.bias') ? 'cls.predictions.bias' : 'cls.predictions.decoder.bias'),
        }
      : undefined;
    const pooler = task.kind === 'classifier' || task.kind === 'pooled' ? lin(`${p}pooler.dense`) : undefined;
    const taskLin = task.name ? lin(task.name) : undefined;
    const lastNorm = `${p}encoder.layer.${config.layers - 1}.output.LayerNorm`;
    const what = {
      mlm: `masked-LM logits through ${untiedDecoder ? '`cls.predictions.decoder`' : `the tied \`${e}.word_embeddings.weight\``}`,
      classifier: 'output: sequence classifier on the pooler',
      'token-classifier': `output: token classifier \`${task.name}\``,
      pooled: 'output: the pooler output',
      hidden: 'output: the final hidden states',
    }[task.kind];
    /** The encoder's final hidden states, token rows [n x T, width]. */
    const encode = (ids: tf.Tensor2D, features?: Parameters<LmModel['hidden']>[1]): tf.Tensor2D => {
      const [n, s] = ids.shape;
      checkSequence(s, config);
      const x0 = tf.tidy(() => {
        let x = addPositions(embed(word, ids), pos, n, s);
        if (typeRow) x = tf.add(x, typeRow);
        return layerNorm(x, embNorm[0], embNorm[1], eps);
      });
      // Post-LN: the residual stream's units are sampled after each LayerNorm.
      features?.residual?.(-1, x0);
      const x = runBlocks(x0, blocks, (x, b, i) => {
        const [q, k, v] = [dense(x, ...b.q), dense(x, ...b.k), dense(x, ...b.v)];
        const att = attention(q, k, v, { batch: n, seq: s, heads, kvHeads: heads, headDim }, { causal: false });
        features?.attention?.(i, { q, k, v, out: att });
        const a = layerNorm(tf.add(x, dense(att, ...b.o)), b.ln1[0], b.ln1[1], eps);
        features?.residual?.(i - 0.5, a);
        const fc = dense(a, ...b.fc);
        const hid = activate(features?.repair ? features.repair(i, fc) : fc, config.act);
        features?.mlp?.(i, hid);
        const y = layerNorm(tf.add(a, dense(hid, ...b.out)), b.ln2[0], b.ln2[1], eps);
        features?.residual?.(i, y);
        return y;
      });
      return x;
    };
    const model: LmModel = {
      config,
      description: `bert: ${config.layers} layers, width ${d}, ${headsText(config)}, ${maxPositions} positions, ${what}`,
      hidden(ids, features) {
        const x = encode(ids, features);
        if (!mlmHead) return x;
        const out = tf.tidy(() => layerNorm(activate(dense(x, ...mlmHead.transform), config.act), mlmHead.norm[0], mlmHead.norm[1], eps));
        x.dispose();
        return out;
      },
      head: (rows) => (mlmHead ? dense(rows, mlmHead.decoder, mlmHead.bias) : taskLin ? dense(rows, ...taskLin) : rows),
      logits: (ids) => fullLogits(model, ids),
      output(ids) {
        if (task.kind !== 'classifier' && task.kind !== 'pooled') return fullLogits(model, ids);
        const [n, s] = ids.shape;
        const x = encode(ids);
        return tf.tidy(() => {
          // The pooler reads the first token's hidden state.
          const first = tf.reshape(tf.slice(tf.reshape(x, [n, s, -1]), [0, 0, 0], [n, 1, -1]), [n, -1]) as tf.Tensor2D;
          const pooled = tf.tanh(dense(first, ...pooler!));
          x.dispose();
          return taskLin ? dense(pooled, ...taskLin) : pooled;
        });
      },
      ...(task.kind === 'hidden' ? { outputAxis: { tensor: w.has(`${lastNorm}.weight`) ? `${lastNorm}.weight` : `${lastNorm}.gamma`, axis: 0 } } : {}),
      dispose: () => w.dispose(),
    };
    return model;
  } catch (err) {
    w.dispose();
    throw err;
  }
}

/** BERT as its family gives it to the generic LM code. */
export const bertLm: LmArchitecture = {
  build: buildBert,
  featureSources(p, i) {
    const l = `${p}encoder.layer.${i}`;
    return {
      residual: [`${p}embeddings.word_embeddings.weight`, 1],
      mlp: [`${l}.output.dense.weight`, 1],
      out: [`${l}.attention.output.dense.weight`, 1],
      q: [`${l}.attention.self.query.weight`, 0],
      k: [`${l}.attention.self.key.weight`, 0],
      v: [`${l}.attention.self.value.weight`, 0],
    };
  },
  // REPAIR: each block's MLP pre-activations, the output of `intermediate.dense` (Linear [out, in]: row j and bias j are unit j).
  repairSites: (p, config) =>
    Array.from({ length: config.layers }, (_, l) => {
      const fc = `${p}encoder.layer.${l}.intermediate.dense`;
      return { scale: [[`${fc}.weight`, 0], [`${fc}.bias`, 0]], shift: { bias: `${fc}.bias` } };
    }),
  parameterCount(config) {
    const { hidden: d, vocab: v, layers: l } = config;
    const f = config.intermediate ?? 4 * d;
    // Token types and the masked-LM head (transform, its LayerNorm, the decoder bias, an untied decoder).
    const block = 4 * (d * d + d) + 2 * 2 * d + (d * f + f) + (f * d + d);
    const head = d * d + d + 2 * d + v + (config.tied ? 0 : v * d);
    return v * d + config.maxPositions * d + 2 * d + 2 * d + l * block + head;
  },
};
