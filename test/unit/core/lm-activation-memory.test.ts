/**
 * Memory of activation matching on language models (core/lmActivationMemory.ts, issues 10/13):
 * the plan's bytes are what the accumulators and the kept features actually hold on the shared
 * tiny GPT-2, Llama (GQA), Qwen2 and BERT; a budget below a single pass's peak splits the blocks
 * into passes whose permutations are identical to the single pass's; a budget below one block
 * refuses in one line naming the permutation and the bytes, directly and through the align
 * handler; the TinyLlama-1.1B figures quoted in docs/transformers.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, PermSpec, TensorMap } from '../../../src/core/checkpoint';
import { readHfConfig } from '../../../src/core/families/hfConfig';
import { planLmActivationMatching, statisticsBytes, type LmActivationShapes } from '../../../src/core/lmActivationMemory';
import { MemoryBudgetError } from '../../../src/core/memoryBudget';
import { applyPermutations, randomPermutations } from '../../../src/core/matching/permute';
import { writeSafetensors } from '../../../src/core/safetensors';
import { inferSpec } from '../../../src/core/permspec';
import { initBackend } from '../../../src/engine/backend';
import { lmActivationMatching, lmActivationShapes } from '../../../src/engine/compute/activationMatching';
import type { HandlerContext } from '../../../src/engine/handlerContext';
import { EngineError } from '../../../src/engine/errors';
import { alignHandler } from '../../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../src/engine/lm/evaluate';
import { lmFeatureAxes } from '../../../src/engine/lm/featureAxes';
import { namePrefix } from '../../../src/engine/lm/layers';
import { buildLm } from '../../../src/engine/lm/model';
import { hfFixture } from '../helpers/hfFixtures';
import { randomTokens } from '../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { writeTokensNpy } from '../helpers/trainGpt2';

const MASK_ID = 3;
const FIXTURES = ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'bert-tiny'] as const;

function specOf(dir: string, tensors: TensorMap): PermSpec {
  const hf = readHfConfig(path.join(dir, 'model.safetensors'));
  return inferSpec([...tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), hf).spec;
}

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-mem-');
});
after(() => tmp.remove());

describe('activation matching memory on the Hugging Face fixtures', () => {
  for (const fixture of FIXTURES) {
    it(`${fixture}: the plan is what the accumulators hold; a small budget gives >= 2 passes and the same permutations`, async () => {
      const dir = hfFixture(fixture);
      const lm = await loadLmCheckpoint(dir);
      const a = lm.tensors;
      const spec = specOf(dir, a);
      const b = applyPermutations(spec, randomPermutations(spec, 5), a);
      // 10 sequences in batches of 4: the last batch is smaller, the largest is planned.
      const n = 10;
      const t = 16;
      const step = 4;
      const ids = randomTokens(n, t, lm.config.vocab, 3);
      const input = prepareLmEvaluation(lm.config, { ids, n, t, source: 'ids', description: 'random ids' }, { maskId: MASK_ID });
      const which = lmFeatureAxes(spec, lm.config, namePrefix(a, lm.config, lm.paths.weights));
      const shapes = lmActivationShapes(which, lm.config, input);
      // The budget that holds the residual stream and block 0 together, no more: every other
      // block fits alone, so the batches keep their size and there are at least two passes.
      const small = planLmActivationMatching({ ...shapes, blocks: shapes.blocks.slice(0, 1) }, Number.MAX_SAFE_INTEGER, step).peakBytes;
      const [ma, mb] = [buildLm(a, lm.config), buildLm(b, lm.config)];
      try {
        const run = async (budget: number) => {
          const reports: { pass: number; statisticsBytes: number; featureBytes: number }[] = [];
          const messages: string[] = [];
          const r = await lmActivationMatching(spec, ma, mb, input, which, { sequencesPerBatch: step, memoryBudget: budget, onPass: (p) => reports.push(p), onProgress: (p) => messages.push(p.message ?? '') });
          return { r, reports, messages };
        };
        const one = await run(Number.MAX_SAFE_INTEGER);
        const split = await run(small);
        for (const { r, reports } of [one, split]) {
          assert.equal(r.plan.sequencesPerBatch, step);
          assert.equal(reports.length, r.plan.passes.length);
          r.plan.passes.forEach((p, k) => {
            assert.equal(reports[k].statisticsBytes, p.statisticsBytes, `${fixture}: pass ${k + 1}'s sums`);
            assert.equal(reports[k].featureBytes, p.featureBytesPerSequence * step, `${fixture}: pass ${k + 1}'s kept features`);
            assert.ok(p.peakBytes <= r.plan.budget);
          });
        }
        assert.equal(one.r.plan.passes.length, 1);
        assert.equal(one.r.plan.passes[0].statisticsBytes, one.r.plan.statisticsBytes);
        assert.ok(split.r.plan.passes.length >= 2, `${fixture}: ${split.r.plan.passes.length} pass(es) under ${small} bytes`);
        assert.ok(split.r.plan.passes[0].residual && split.r.plan.passes.slice(1).every((p) => !p.residual));
        assert.deepEqual(split.r.plan.passes.flatMap((p) => p.blocks), Array.from({ length: lm.config.layers }, (_, i) => i));
        assert.equal(split.r.plan.passes.reduce((s, p) => s + p.statisticsBytes, 0), one.r.plan.statisticsBytes);
        assert.ok(split.r.plan.peakBytes < one.r.plan.peakBytes);
        // Identical permutations and correlations: the sums are the same numbers.
        assert.deepEqual(split.r.perms, one.r.perms);
        assert.deepEqual(split.r.correlation, one.r.correlation);
        assert.deepEqual(split.r.unobserved, []);
        const total = split.r.plan.passes.length;
        assert.ok(split.messages.includes(`Activation matching: pass 1 of ${total}, residual stream and block 0, 4 of 10 sequences`), split.messages[0]);
        assert.ok(split.messages.some((m) => new RegExp(`^Activation matching: pass ${total} of ${total}, blocks? \\d`).test(m)));
        assert.equal(one.messages[0], 'Activation matching: 4 of 10 sequences');
      } finally {
        ma.dispose();
        mb.dispose();
      }
    });
  }

  it('refuses a budget below one block in one line naming the permutation and the bytes, through the align handler too', async () => {
    const src = hfFixture('llama-tiny-gqa');
    const lm = await loadLmCheckpoint(src);
    const spec = specOf(src, lm.tensors);
    const b = applyPermutations(spec, randomPermutations(spec, 6), lm.tensors);
    const dirB = tmp.file('llama-b');
    mkdirSync(dirB);
    copyFileSync(path.join(src, 'config.json'), path.join(dirB, 'config.json'));
    const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    await writeSafetensors(path.join(dirB, 'model.safetensors'), [...b].map(([name, x]) => ({ name, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
    const data = tmp.file('ids.npy');
    writeTokensNpy(data, randomTokens(4, 16, lm.config.vocab, 10), 4, 16);
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
    await assert.rejects(
      alignHandler({ kind: 'align', a: path.join(src, 'model.safetensors'), b: path.join(dirB, 'model.safetensors'), method: 'activation', seed: 0, maxIter: 1, data: { path: data }, memoryBudget: 2000 }, ctx),
      (e: unknown) => {
        assert.ok(e instanceof EngineError, String(e));
        assert.equal(e.kind, 'OverBudget');
        assert.match(e.message, /^llama-b\/model\.safetensors: activation matching: \S+ needs \d[\d.]* kB of statistics and features \(.*\); the memory budget is 2\.0 kB \(--memory-budget\)$/);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      },
    );
    // Sums and features that fit the budget alone, but not beside what the process holds (Node,
    // tfjs, A and B, both models on the backend: hundreds of MB here): refused, naming it.
    const stats = planLmActivationMatching(lmActivationShapes(lmFeatureAxes(spec, lm.config, namePrefix(lm.tensors, lm.config, src)), lm.config, { n: 4, t: 16 }), 1e12).peakBytes;
    await assert.rejects(
      alignHandler({ kind: 'align', a: path.join(src, 'model.safetensors'), b: path.join(dirB, 'model.safetensors'), method: 'activation', seed: 0, maxIter: 1, data: { path: data }, memoryBudget: 4 * stats }, ctx),
      (e: unknown) => {
        assert.ok(e instanceof EngineError && e.kind === 'OverBudget', String(e));
        assert.match(e.message, /activation matching: \S+ needs .* of statistics and features \(.*, beside the \d[\d.]* MB the process and both models hold\); the memory budget is/);
        return true;
      },
    );
  });
});

describe('the memory formula', () => {
  // TinyLlama-1.1B: 22 blocks, hidden 2048, MLP 5632, 32 heads in 4 KV groups of head_dim 64.
  const tinyLlama: LmActivationShapes = {
    tokensPerSequence: 512,
    sequences: 1000,
    forwardBytesPerSequence: 0,
    residual: { perm: 'P_residual', units: 2048, samples: 45 },
    blocks: Array.from({ length: 22 }, (_, i) => ({
      mlp: { perm: `P_layers.${i}.mlp`, units: 5632 },
      heads: [2048, 2048, 256, 256].map((units) => ({ perm: `P_layers.${i}.kv_heads`, units })),
    })),
  };

  it('sums are 8 (n^2 + 4n) bytes per feature; TinyLlama needs 7.1 GB of them at once', () => {
    assert.equal(statisticsBytes(5632), 8 * (5632 * 5632 + 4 * 5632));
    const plan = planLmActivationMatching(tinyLlama, Number.MAX_SAFE_INTEGER);
    const block = statisticsBytes(5632) + 2 * statisticsBytes(2048) + 2 * statisticsBytes(256);
    assert.equal(plan.statisticsBytes, statisticsBytes(2048) + 22 * block);
    assert.equal(Math.round(statisticsBytes(5632) / 1e6), 254);
    assert.equal(Math.round(plan.statisticsBytes / 1e8) / 10, 7.1);
    assert.equal(plan.passes.length, 1);
  });

  it('under 2 GB: batches shrink to fit a block, blocks are packed into passes in order', () => {
    const plan = planLmActivationMatching(tinyLlama, 2e9);
    assert.ok(plan.passes.length > 1);
    assert.ok(plan.peakBytes <= 2e9);
    assert.ok(plan.sequencesPerBatch >= 1 && plan.sequencesPerBatch <= 16);
    assert.deepEqual(plan.passes.flatMap((p) => p.blocks), Array.from({ length: 22 }, (_, i) => i));
    assert.ok(plan.passes[0].residual);
  });

  it('refuses when one block does not fit, naming its widest permutation', () => {
    assert.throws(() => planLmActivationMatching(tinyLlama, 128e6), (e: unknown) => {
      assert.ok(e instanceof MemoryBudgetError);
      assert.equal(e.perm, 'P_residual');
      assert.match(e.message, /^activation matching: P_residual needs [\d.]+ MB of statistics and features \(the residual stream, one sequence per batch\); the memory budget is 128 MB \(--memory-budget\)$/);
      return true;
    });
    const noResidual = { ...tinyLlama, residual: undefined };
    assert.throws(() => planLmActivationMatching(noResidual, 300e6), (e: unknown) => e instanceof MemoryBudgetError && e.perm === 'P_layers.0.mlp' && /block 0/.test(e.message));
  });

  it('a permutation shared by two blocks keeps them in one pass: refused where separate blocks would take two', () => {
    const blocks = tinyLlama.blocks.slice(0, 2).map((b) => ({ ...b, heads: [] }));
    const separate: LmActivationShapes = { ...tinyLlama, residual: undefined, blocks };
    const oneBlock = planLmActivationMatching({ ...separate, blocks: blocks.slice(0, 1) }, Number.MAX_SAFE_INTEGER, 1).peakBytes;
    assert.deepEqual(planLmActivationMatching(separate, oneBlock, 1).passes.map((p) => p.blocks), [[0], [1]]);
    const shared: LmActivationShapes = { ...separate, blocks: blocks.map((b) => ({ ...b, mlp: { perm: 'P_mlp', units: 5632 } })) };
    assert.deepEqual(planLmActivationMatching(shared, Number.MAX_SAFE_INTEGER).passes.map((p) => p.blocks), [[0, 1]]);
    assert.throws(() => planLmActivationMatching(shared, oneBlock, 1), (e: unknown) => e instanceof MemoryBudgetError && e.perm === 'P_mlp');
  });
});
