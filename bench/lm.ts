/**
 * LM evaluation throughput and memory against its plan: a random GPT-2-shaped model evaluated on
 * random token windows under the default budget and under a budget of one sequence per batch;
 * tfjs's peak bytes during the evaluation (weights excluded: they are allocated before) against
 * the planned budget.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../src/core/matching/prng';
import { initBackend } from '../src/engine/backend';
import { parseLmConfig } from '../src/engine/lm/config';
import { evaluateLm, prepareLmEvaluation } from '../src/engine/lm/evaluate';
import { DEFAULT_LM_BUDGET_BYTES, lmBytesPerSequence, planLmBatches } from '../src/engine/lm/memoryPlan';
import { buildLm } from '../src/engine/lm/model';

/** A GPT-2 with uniform random weights (PyTorch-like scales, unit norms), tied head; also bench/lmBarrier.ts's pair. */
export function randomGpt2(layers: number, d: number, vocab: number, positions: number, seed = 1): Map<string, { shape: number[]; data: Float32Array }> {
  const r = mulberry32(seed);
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[], scale: number) => m.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale) });
  add('transformer.wte.weight', [vocab, d], 0.1);
  add('transformer.wpe.weight', [positions, d], 0.1);
  for (let l = 0; l < layers; l++) {
    const h = `transformer.h.${l}`;
    for (const n of ['ln_1', 'ln_2']) {
      m.set(`${h}.${n}.weight`, { shape: [d], data: new Float32Array(d).fill(1) });
      add(`${h}.${n}.bias`, [d], 0.01);
    }
    for (const [n, i, o] of [['attn.c_attn', d, 3 * d], ['attn.c_proj', d, d], ['mlp.c_fc', d, 4 * d], ['mlp.c_proj', 4 * d, d]] as const) {
      add(`${h}.${n}.weight`, [i, o], Math.sqrt(3 / i));
      add(`${h}.${n}.bias`, [o], 0.01);
    }
  }
  m.set('transformer.ln_f.weight', { shape: [d], data: new Float32Array(d).fill(1) });
  add('transformer.ln_f.bias', [d], 0.01);
  return m;
}

export async function benchLm(): Promise<string[]> {
  const backend = await initBackend('auto');
  const [layers, d, vocab, t, n] = [4, 256, 8192, 256, 16];
  const config = parseLmConfig({ model_type: 'gpt2', n_layer: layers, n_embd: d, n_head: 4, vocab_size: vocab, n_positions: t }, 'bench/config.json');
  const model = buildLm(randomGpt2(layers, d, vocab, t), config, 'bench/model.safetensors');
  const r = mulberry32(2);
  const ids = Int32Array.from({ length: n * t }, () => Math.floor(r() * vocab));
  const input = prepareLmEvaluation(config, { ids, n, t, source: 'random', description: '' });
  const lines = [`tfjs ${backend}; gpt2 ${layers} layers, width ${d}, vocab ${vocab}; ${n} sequences of ${t} tokens`];
  const oneSeq = 2 * Math.max(lmBytesPerSequence(config, t), 4 * 3 * vocab * 64);
  try {
    for (const [label, budget] of [['default budget', DEFAULT_LM_BUDGET_BYTES], ['one sequence per batch', oneSeq]] as const) {
      const plan = planLmBatches(config, t, budget);
      const t0 = performance.now();
      let loss = 0;
      const held = tf.memory().numBytes; // the weights: tfjs's peak counts them, the plan does not
      const prof = await tf.profile(async () => {
        loss = (await evaluateLm(model, input, { budgetBytes: budget })).loss;
        return [];
      });
      const s = (performance.now() - t0) / 1000;
      lines.push(
        `${label}: ${plan.sequences} sequences per batch, ${plan.headRows} head rows per chunk; ${((n * t) / s).toFixed(0)} tokens/s; ` +
          `tfjs peak above the weights ${((prof.peakBytes - held) / 2 ** 20).toFixed(1)} MiB vs budget ${(budget / 2 ** 20).toFixed(1)} MiB; loss ${loss.toFixed(4)}`,
      );
    }
  } finally {
    model.dispose();
  }
  return lines;
}
