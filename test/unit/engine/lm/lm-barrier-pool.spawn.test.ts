/**
 * The LM barrier as the engine runs it (the λs of both paths spread over a pool of 2 workers,
 * each evaluating its chunk in batches of the memory plan; with REPAIR, the endpoints' statistics
 * kept between a worker's chunks and each λ evaluated in one pass) against a plain evaluation in
 * this thread: every sequence in one batch, one λ after another, REPAIR folded into the weights
 * (repairLmInterpolated) before the evaluation. On the gpt2-tiny and llama-tiny-gqa fixtures, B a
 * perturbed copy of A and the aligned path given by a random permutation of the inferred spec.
 * Losses and accuracies agree to float32 rounding (relative 1e-5; accuracy within one position).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { lambdaGrid } from '../../../../src/core/barrier';
import { interpolate } from '../../../../src/core/matching/merge';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { inferSpec } from '../../../../src/core/permspec';
import { encodeFromFloat32, writeSafetensors } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import { EngineClient } from '../../../../src/engine/client';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { evaluateLmWeights, prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { lmUnitStats, repairLmInterpolated } from '../../../../src/engine/lm/repair';
import type { BarrierResult } from '../../../../src/engine/protocol';
import { testBackend } from '../../helpers/backend';
import { npyBytes } from '../../helpers/dataFiles';
import { hfFixture } from '../../helpers/hfFixtures';
import { randomTokens } from '../../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

const root = path.join(__dirname, '..', '..', '..', '..');
const workerScript = path.join(root, 'dist', 'worker.js');
const N = 8;
const T = 16;
const STEPS = 5;

let client: EngineClient;
let tmp: TmpDir;

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
  assert.ok(existsSync(workerScript), 'the build must produce dist/worker.js');
  await initBackend(testBackend());
  tmp = await makeTmpDir('rebasin-lm-barrier-pool-');
  client = EngineClient.start({ backend: testBackend(), workers: 2, workerScript });
});

after(async () => {
  await client?.dispose();
  await tmp?.remove();
});

/** Every tensor plus seeded noise of 20% of its RMS (another model of the same shapes). */
function perturbed(a: TensorMap, seed: number): Map<string, DenseTensor> {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  return new Map(
    [...a].map(([name, t]) => {
      const rms = Math.sqrt(t.data.reduce((acc, v) => acc + v * v, 0) / Math.max(1, t.data.length)) || 1;
      return [name, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + 0.4 * rms * next()) }];
    }),
  );
}

function close(got: number, want: number, tol = 1e-5): boolean {
  return Math.abs(got - want) <= tol * Math.abs(want) + 1e-9;
}

for (const fixture of ['gpt2-tiny', 'llama-tiny-gqa']) {
  describe(`LM barrier over the worker pool on ${fixture}`, () => {
    async function setUp(): Promise<{ dirB: string; tokens: string; plain: (repair: boolean) => Promise<{ naive: number[][]; aligned: number[][] }>; perms: Record<string, number[]> }> {
      const dirA = hfFixture(fixture);
      const lm = await loadLmCheckpoint(dirA);
      const { config } = lm;
      const a = new Map(lm.tensors);
      const b = perturbed(a, 11);
      const dirB = path.join(tmp.path, `${fixture}-b`);
      mkdirSync(dirB, { recursive: true });
      copyFileSync(path.join(dirA, 'config.json'), path.join(dirB, 'config.json'));
      await writeSafetensors(path.join(dirB, 'model.safetensors'), [...b].map(([name, t]) => ({ name, dtype: 'F32', shape: [...t.shape], read: async () => encodeFromFloat32('F32', t.data) })));
      const ids = randomTokens(N, T, config.vocab, 4);
      const tokens = path.join(tmp.path, `${fixture}-tokens.npy`);
      writeFileSync(tokens, npyBytes('<i4', [N, T], new Uint8Array(ids.buffer)));
      const { spec } = inferSpec([...a].map(([name, t]) => ({ name, shape: [...t.shape] })), readHfConfig(path.join(dirA, 'model.safetensors')));
      const known = randomPermutations(spec, 7);
      const pib = applyPermutations(spec, known, b);
      const input = prepareLmEvaluation(config, { ids, n: N, t: T, source: tokens, description: '' });
      /** Loss and accuracy per λ of each path: one batch, one λ at a time, REPAIR folded first. */
      const plain = async (repair: boolean): Promise<{ naive: number[][]; aligned: number[][] }> => {
        const out: { naive: number[][]; aligned: number[][] } = { naive: [], aligned: [] };
        for (const [pathName, far] of [['naive', b], ['aligned', pib]] as const) {
          const [sa, sb] = repair ? [await lmUnitStats(a, config, input, N), await lmUnitStats(far, config, input, N)] : [];
          for (const lambda of lambdaGrid(STEPS)) {
            const theta = interpolate(a, far, lambda);
            const weights = sa && sb ? await repairLmInterpolated(theta, lambda, sa, sb, config, input, N) : theta;
            const m = await evaluateLmWeights(weights, config, input, { budgetBytes: 1 << 30 });
            out[pathName].push([m.loss, m.accuracy]);
          }
        }
        return out;
      };
      return { dirB, tokens, plain, perms: Object.fromEntries(Object.entries(known).map(([k, p]) => [k, Array.from(p)])) };
    }

    function assertSame(r: BarrierResult, want: { naive: number[][]; aligned: number[][] }, what: string): void {
      assert.equal(r.workers, 2, `${what}: both workers took λs`);
      for (const p of ['naive', 'aligned'] as const) {
        const got = r[p]!;
        want[p].forEach(([loss, acc], i) => {
          assert.ok(close(got.loss[i], loss), `${what}, ${p} λ ${r.lambdas[i]}: loss ${got.loss[i]} vs ${loss}`);
          assert.ok(Math.abs(got.acc[i] - acc) <= 1 / (N * (T - 1)) + 1e-12, `${what}, ${p} λ ${r.lambdas[i]}: accuracy ${got.acc[i]} vs ${acc}`);
        });
      }
    }

    it('gives the losses of a plain one-batch evaluation, in batches of the memory plan and in one batch', async () => {
      const { dirB, tokens, plain, perms } = await setUp();
      const want = await plain(false);
      // The default budget holds every sequence in one batch; 8 MB (4 MB a worker) gives batches of a few sequences.
      for (const memoryBudget of [undefined, 8e6]) {
        const r = await client.request({ kind: 'barrier', a: hfFixture(fixture), b: dirB, data: { path: tokens }, steps: STEPS, align: true, seed: 0, maxIter: 10, perms, ...(memoryBudget ? { memoryBudget } : {}) });
        if (memoryBudget) assert.ok(r.evaluation!.batchSize < N, `several batches under ${memoryBudget} bytes (batch of ${r.evaluation!.batchSize})`);
        else assert.ok(r.evaluation!.batchSize >= N, 'one batch under the default budget');
        assertSame(r, want, `budget ${memoryBudget ?? 'default'}`);
      }
    });

    it('with REPAIR (one pass per λ in the workers) gives the losses of the folded repaired models', async () => {
      const { dirB, tokens, plain, perms } = await setUp();
      const r = await client.request({ kind: 'barrier', a: hfFixture(fixture), b: dirB, data: { path: tokens }, steps: STEPS, align: true, seed: 0, maxIter: 10, perms, repair: true });
      assert.equal(r.evaluation?.repair?.examples, N, 'the REPAIR sample is every sequence');
      assertSame(r, await plain(true), 'REPAIR');
    });
  });
}
