/**
 * Activation matching for transformers (compute/activationMatching.ts `lmActivationMatching`,
 * Git Re-Basin section 3.1 on the residual stream, the MLP hidden units and, Verma & Elbayad
 * 2024 style, the attention heads with their inner permutations): on the shared tiny GPT-2,
 * Llama (RoPE, 2 KV groups), Qwen2 (the same with q/k/v biases) and BERT, a random element of the whole inferred group (residual +
 * MLP + heads + v/o and q/k dimensions + KV groups) is recovered exactly from the models'
 * features on token data, and pi(B) keeps B's logits to 1e-4; directly and through the align
 * handler (`method: "activation"` on a Hugging Face checkpoint with token data).
 * Trained models: lm-activation-trained.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, PermSpec, TensorMap } from '../../../../src/core/checkpoint';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { writeSafetensors } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { initBackend } from '../../../../src/engine/backend';
import { lmActivationMatching } from '../../../../src/engine/compute/activationMatching';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { prepareLmEvaluation } from '../../../../src/engine/lm/evaluate';
import { lmFeatureAxes } from '../../../../src/engine/lm/featureAxes';
import { namePrefix } from '../../../../src/engine/lm/layers';
import { buildLm } from '../../../../src/engine/lm/model';
import { hfFixture } from '../../helpers/hfFixtures';
import { randomTokens } from '../../helpers/lmReference';
import { logitsGap } from '../../helpers/lmMatching';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { writeTokensNpy } from '../../helpers/trainGpt2';

/** A mask id for BERT's masked input (the fixture's tokenizer has no [MASK]). */
const MASK_ID = 3;

function specOf(dir: string, tensors: TensorMap): PermSpec {
  const hf = readHfConfig(path.join(dir, 'model.safetensors'));
  return inferSpec([...tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), hf).spec;
}

function assertSameTensors(got: TensorMap, want: TensorMap, what: string): void {
  for (const [name, t] of want) assert.deepEqual(got.get(name)!.data, t.data, `${what}: \`${name}\` differs`);
}

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-am-');
});
after(() => tmp.remove());

const FIXTURES = ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'mixtral-tiny', 'bert-tiny'] as const;

describe('activation matching on the Hugging Face fixtures', () => {
  for (const fixture of FIXTURES) {
    it(`${fixture}: a random residual + MLP + heads element is recovered exactly; pi(B) keeps B's logits`, async () => {
      const dir = hfFixture(fixture);
      const lm = await loadLmCheckpoint(dir);
      const a = lm.tensors;
      const spec = specOf(dir, a);
      const heads = Object.keys(spec.perms).filter((p) => /\.(heads|kv_heads|vo|qk)$/.test(p));
      assert.ok(heads.length >= 4, `${fixture}: heads in the spec (${heads.join(', ')})`);
      const known = randomPermutations(spec, 11);
      const b = applyPermutations(spec, known, a);
      const n = 8;
      const t = 32;
      const ids = randomTokens(n, t, lm.config.vocab, 9);
      const input = prepareLmEvaluation(lm.config, { ids, n, t, source: 'ids', description: 'random ids' }, { maskId: MASK_ID });
      const which = lmFeatureAxes(spec, lm.config, namePrefix(a, lm.config, lm.paths.weights));
      assert.equal(which.heads?.filter((h) => h?.out).length, lm.config.layers, 'every block has its heads');
      const [ma, mb] = [buildLm(a, lm.config), buildLm(b, lm.config)];
      let r;
      try {
        r = await lmActivationMatching(spec, ma, mb, input, which);
      } finally {
        ma.dispose();
        mb.dispose();
      }
      assert.deepEqual(r.unobserved, [], 'every permutation is seen by some feature');
      for (const name of Object.keys(spec.perms)) {
        assert.ok(r.correlation[name].after > 0.999, `${name}: matched correlation ${r.correlation[name].after}`);
      }
      // Exact recovery: pi(B) is A, tensor for tensor.
      const aligned = applyPermutations(spec, r.perms, b);
      assertSameTensors(aligned, a, fixture);
      const gap = await logitsGap(lm.config, b, aligned, ids, n, t);
      assert.ok(gap < 1e-4, `${fixture}: pi(B)'s logits differ from B's by ${gap}`);
    });
  }
});

describe('align with method "activation" on a Hugging Face folder and token data', () => {
  for (const fixture of FIXTURES) {
    it(`${fixture}: recovers a random element of the group through the handler`, async () => {
      const src = hfFixture(fixture);
      const lm = await loadLmCheckpoint(src);
      const spec = specOf(src, lm.tensors);
      const known = randomPermutations(spec, 6);
      const b = applyPermutations(spec, known, lm.tensors);
      // B: a folder of its own with A's config.json; A: the fixture.
      const dirB = tmp.file(`${fixture}-b`);
      mkdirSync(dirB);
      copyFileSync(path.join(src, 'config.json'), path.join(dirB, 'config.json'));
      const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
      await writeSafetensors(path.join(dirB, 'model.safetensors'), [...b].map(([name, x]) => ({ name, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
      const data = tmp.file(`${fixture}-ids.npy`);
      writeTokensNpy(data, randomTokens(8, 32, lm.config.vocab, 10), 8, 32);
      const logs: string[] = [];
      const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
      const r = await alignHandler({ kind: 'align', a: path.join(src, 'model.safetensors'), b: path.join(dirB, 'model.safetensors'), method: 'activation', seed: 0, maxIter: 1, data: { path: data, maskId: MASK_ID } }, ctx);
      assert.deepEqual(logs.filter((m) => /left as the identity/.test(m)), []);
      const perms = Object.fromEntries(Object.entries(r.perms).map(([k, v]) => [k, Int32Array.from(v)]));
      assertSameTensors(applyPermutations(spec, perms, b), lm.tensors, fixture);
    });
  }
});
