/**
 * REPAIR for every language-model family (src/engine/lm/repair.ts, each family's `repairSites`):
 * GPT-2, Llama (RoPE, GQA), Qwen2, BERT, Mixtral (per expert), and a Llama with `mlp_bias`.
 * - On a pair where B is a permutation of A (pi(B) = A), REPAIR at any lambda leaves the
 *   interpolated model as it is.
 * - On a pair of different models (the fixture and a seeded random perturbation of it), the
 *   repaired model's units at every site have, per unit, the interpolation of the endpoints'
 *   standard deviations and (where the site can take a shift) means: measured again on the
 *   repaired weights from the units the forward pass gives, the statistics computed in plain
 *   float64 here (a shift folded through down_proj is checked on down_proj's output mean).
 *   At lambda = 0 the repaired model is A.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { interpolate } from '../../../../src/core/matching/merge';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import type { LmConfig } from '../../../../src/engine/lm/config';
import { evaluateLmWeights, prepareLmEvaluation, type LmEvaluationInput } from '../../../../src/engine/lm/evaluate';
import { planLmBatches } from '../../../../src/engine/lm/memoryPlan';
import { buildLm } from '../../../../src/engine/lm/model';
import { evaluateRepairedLm, lmRepairSites, lmUnitStats, repairLmInterpolated } from '../../../../src/engine/lm/repair';
import { hfFixture } from '../../helpers/hfFixtures';
import { randomTokens } from '../../helpers/lmReference';

before(() => initBackend('wasm'));

const N = 6;
const T = 16;

/** Seeded normal deviates (Box-Muller on a linear congruential generator). */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Every tensor plus noise of `rel` times its RMS (a different model of the same shapes). */
function perturbed(a: TensorMap, rel: number, seed: number): Map<string, DenseTensor> {
  const g = gaussian(seed);
  return new Map(
    [...a].map(([name, t]) => {
      const rms = Math.sqrt(t.data.reduce((s, v) => s + v * v, 0) / Math.max(1, t.data.length)) || 1;
      return [name, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + rel * rms * g()) }];
    }),
  );
}

/** Every site's units over the first `n` sequences, in float64 [site][token * width + unit]. */
function siteUnits(t: TensorMap, config: LmConfig, input: LmEvaluationInput, n: number): { width: number; values: number[] }[] {
  const out: { width: number; values: number[] }[] = [];
  const model = buildLm(t, config);
  try {
    tf.tidy(() => {
      const ids = tf.tensor2d(input.input.subarray(0, n * input.t), [n, input.t], 'int32');
      model.hidden(ids, {
        repair: (site, u) => {
          out[site] = { width: u.shape[1], values: Array.from(u.dataSync()) };
          return u;
        },
      }).dispose();
    });
  } finally {
    model.dispose();
  }
  return out;
}

/** Plain float64 mean and standard deviation per unit. */
function plainStats(u: { width: number; values: number[] }): { mean: number[]; std: number[] } {
  const rows = u.values.length / u.width;
  const mean = Array.from({ length: u.width }, (_, j) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += u.values[r * u.width + j];
    return s / rows;
  });
  const std = mean.map((m, j) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += (u.values[r * u.width + j] - m) ** 2;
    return Math.sqrt(s / rows);
  });
  return { mean, std };
}

/** |got - want| within `tol` of |want| + `scale` (a statistic's own size: a mean near 0 is judged against the unit's std). */
function close(got: number, want: number, tol: number, scale = 0): boolean {
  return Math.abs(got - want) <= tol * (Math.abs(want) + scale) + 1e-12;
}

/** A Llama whose MLPs have biases (`mlp_bias`): its sites take the shift through down_proj's bias. */
function withMlpBias(a: TensorMap, config: LmConfig): Map<string, DenseTensor> {
  const g = gaussian(17);
  const out = new Map(a);
  const f = config.intermediate!;
  for (let l = 0; l < config.layers; l++) {
    for (const [name, n] of [[`model.layers.${l}.mlp.gate_proj.bias`, f], [`model.layers.${l}.mlp.up_proj.bias`, f], [`model.layers.${l}.mlp.down_proj.bias`, config.hidden]] as const) {
      out.set(name, { shape: [n], data: Float32Array.from({ length: n }, () => 0.1 * g()) });
    }
  }
  return out;
}

interface Case {
  readonly name: string;
  readonly fixture: string;
  /** Sites take a shift (a bias to put it in). */
  readonly shift: boolean;
  readonly bias?: boolean;
}

const CASES: readonly Case[] = [
  { name: 'GPT-2', fixture: 'gpt2-tiny', shift: true },
  { name: 'Llama (GQA, no MLP biases: scale only)', fixture: 'llama-tiny-gqa', shift: false },
  { name: 'Llama with mlp_bias (shift through down_proj)', fixture: 'llama-tiny-gqa', shift: true, bias: true },
  { name: 'Qwen2 (scale only)', fixture: 'qwen2-tiny-gqa', shift: false },
  { name: 'BERT', fixture: 'bert-tiny', shift: true },
  { name: 'Mixtral (per expert, scale only)', fixture: 'mixtral-tiny', shift: false },
];

for (const c of CASES) {
  describe(`REPAIR on ${c.name}`, () => {
    async function load(): Promise<{ a: Map<string, DenseTensor>; config: LmConfig; input: LmEvaluationInput; dir: string }> {
      const lm = await loadLmCheckpoint(hfFixture(c.fixture));
      const { config } = lm;
      const a = c.bias ? withMlpBias(lm.tensors, config) : new Map(lm.tensors);
      const ids = randomTokens(N, T, config.vocab, 2);
      const input = prepareLmEvaluation(config, { ids, n: N, t: T, source: 'ids', description: 'random ids' }, { maskId: 1, seed: 3 });
      return { a, config, input, dir: hfFixture(c.fixture) };
    }

    it('leaves the model unchanged when B is a permutation of A', async () => {
      const { a, config, input, dir } = await load();
      const hf = readHfConfig(path.join(dir, 'model.safetensors'));
      const { spec } = inferSpec([...a].map(([name, t]) => ({ name, shape: [...t.shape] })), hf);
      // Inner per-block permutations (inside heads or experts) stay the identity, so each is undone by its inverse.
      const known = Object.fromEntries(Object.entries(randomPermutations(spec, 9)).map(([k, p]) => [k, spec.blocks?.[k] === undefined ? p : Int32Array.from(p, (_, i) => i)]));
      const b = applyPermutations(spec, known, a);
      const inverse = Object.fromEntries(
        Object.entries(known).map(([k, p]) => {
          const inv = new Int32Array(p.length);
          p.forEach((v, i) => (inv[v] = i));
          return [k, inv];
        }),
      );
      const pib = applyPermutations(spec, inverse, b);
      const sa = await lmUnitStats(a, config, input);
      const sb = await lmUnitStats(pib, config, input);
      for (const lambda of [0.25, 0.5, 1]) {
        const theta = interpolate(a, pib, lambda);
        const repaired = await repairLmInterpolated(theta, lambda, sa, sb, config, input);
        for (const [name, x] of theta) {
          const y = repaired.get(name)!;
          x.data.forEach((v, i) => assert.ok(close(y.data[i], v, 1e-4, 1e-6), `λ ${lambda} ${name}[${i}]: ${y.data[i]} vs ${v}`));
        }
      }
    });

    it("sets every site's units to the interpolated endpoint statistics", async () => {
      const { a, config, input } = await load();
      const b = perturbed(a, 0.3, 5);
      const sites = lmRepairSites(a, config);
      const shifts = sites.map((s) => s.shift !== undefined && a.has(s.shift.bias));
      assert.deepEqual(shifts, sites.map(() => c.shift), 'sites that take a shift');
      const sa = await lmUnitStats(a, config, input);
      const sb = await lmUnitStats(b, config, input);
      for (const lambda of [0, 0.5]) {
        const theta = interpolate(a, b, lambda);
        const repaired = await repairLmInterpolated(theta, lambda, sa, sb, config, input);
        const before = siteUnits(theta, config, input, N).map(plainStats);
        const after = siteUnits(repaired, config, input, N).map(plainStats);
        assert.equal(after.length, sites.length);
        let moved = 0;
        after.forEach((g, site) => {
          g.std.forEach((s, j) => {
            const want = (1 - lambda) * sa[site].std[j] + lambda * sb[site].std[j];
            assert.ok(close(s, want, 2e-3), `λ ${lambda} site ${site} unit ${j}: std ${s} vs ${want}`);
            if (!close(before[site].std[j], want, 2e-2)) moved++;
            if (shifts[site] && !sites[site].shift?.through) {
              const m = (1 - lambda) * sa[site].mean[j] + lambda * sb[site].mean[j];
              assert.ok(close(g.mean[j], m, 2e-3, want), `λ ${lambda} site ${site} unit ${j}: mean ${g.mean[j]} vs ${m}`);
            }
          });
          const through = sites[site].shift;
          if (shifts[site] && through?.through) {
            // The shift lives in the consumer's bias: its output's mean, W mean(u) + b', is W (target mean) + b.
            const w = theta.get(through.through)!;
            const [rows, cols] = w.shape;
            const at = (o: number, j: number): number => w.data[through.axis === 1 ? o * cols + j : j * cols + o];
            const outputs = through.axis === 1 ? rows : cols;
            for (let o = 0; o < outputs; o++) {
              let got = repaired.get(through.bias)!.data[o];
              let want = theta.get(through.bias)!.data[o];
              let size = 0;
              g.mean.forEach((m, j) => {
                got += at(o, j) * m;
                want += at(o, j) * ((1 - lambda) * sa[site].mean[j] + lambda * sb[site].mean[j]);
                size += Math.abs(at(o, j)) * g.std[j];
              });
              assert.ok(close(got, want, 2e-3, size), `λ ${lambda} site ${site} output ${o}: mean ${got} vs ${want}`);
            }
          }
        });
        // The endpoints' statistics themselves, in float64 from the units.
        if (lambda === 0) {
          siteUnits(a, config, input, N).map(plainStats).forEach((p, site) => p.std.forEach((s, j) => assert.ok(close(sa[site].std[j], s, 1e-3) && close(sa[site].mean[j], p.mean[j], 1e-3, s), `A site ${site} unit ${j}`)));
          for (const [name, x] of a) x.data.forEach((v, i) => assert.ok(close(repaired.get(name)!.data[i], v, 1e-4, 1e-6), `${name}[${i}]`));
        } else {
          assert.ok(moved > 0, 'the midpoint needed a correction');
        }
      }
    });

    it('gives the loss of the folded model in the evaluation\'s own pass (one batch, several batches, a sample smaller than the first batch)', async () => {
      const { a, config, input } = await load();
      const b = perturbed(a, 0.3, 5);
      const plan = planLmBatches(config, T);
      // Budgets: the default (every sequence in one batch); one of 2 sequences a batch (the sample of 2 opens the
      // first, later batches take the recorded corrections); the sample of 4 over batches of 2 (two passes).
      const twoPerBatch = 2 * plan.bytesPerSequence * 2 + 1;
      for (const [sequences, budgetBytes] of [[N, undefined], [2, undefined], [2, twoPerBatch], [4, twoPerBatch]] as const) {
        const sa = await lmUnitStats(a, config, input, sequences);
        const sb = await lmUnitStats(b, config, input, sequences);
        for (const lambda of [0.5, 0.8]) {
          const theta = interpolate(a, b, lambda);
          const folded = await evaluateLmWeights(await repairLmInterpolated(theta, lambda, sa, sb, config, input, sequences), config, input);
          const fused = await evaluateRepairedLm(theta, lambda, sa, sb, config, input, sequences, { budgetBytes });
          const what = `λ ${lambda}, sample of ${sequences}, budget ${budgetBytes ?? 'default'}`;
          assert.ok(close(fused.loss, folded.loss, 1e-5), `${what}: loss ${fused.loss} vs ${folded.loss}`);
          assert.ok(Math.abs(fused.accuracy - folded.accuracy) <= 1 / input.rows.length + 1e-12, `${what}: accuracy ${fused.accuracy} vs ${folded.accuracy}`);
          // And REPAIR did something: the repaired loss is not the plain interpolation's.
          if (sequences === N && lambda === 0.5) assert.notEqual(fused.loss, (await evaluateLmWeights(theta, config, input)).loss);
        }
      }
    });
  });
}
