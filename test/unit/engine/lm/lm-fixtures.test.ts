/**
 * LM forward passes (src/engine/lm) against the logits Hugging Face `transformers` computed for
 * the fixtures in test/fixtures/hf (written by transformers, see its SOURCES.md): GPT-2, Llama with
 * grouped-query attention (single file and 10 shards), Qwen2 (q/k/v biases, tied embeddings)
 * and BERT (masked-LM head, all-ones attention mask), each read from its folder and config.json.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import { loadLmCheckpoint, locateLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { buildLm } from '../../../../src/engine/lm/model';
import { lmParameterCount } from '../../../../src/engine/lm/memoryPlan';
import { hfFixture } from '../../helpers/hfFixtures';

before(async () => {
  await initBackend('wasm');
});

async function reference(dir: string): Promise<{ ids: Int32Array; logits: Float32Array; shape: number[] }> {
  const ckpt = await openCheckpoint(path.join(dir, 'reference_logits.safetensors'));
  try {
    const ids = Int32Array.from(await ckpt.readFloat32('input_ids'));
    return { ids, logits: await ckpt.readFloat32('logits'), shape: [...ckpt.get('logits')!.shape] };
  } finally {
    await ckpt.close();
  }
}

const CASES: readonly { name: string; at?: string; description: RegExp }[] = [
  { name: 'gpt2-tiny', description: /gpt2: 2 layers, width 64, 4 heads of 16, 64 positions, logits through the tied `transformer\.wte\.weight`/ },
  { name: 'llama-tiny-gqa', description: /llama: 2 layers, width 64, 4 heads \(2 key\/value\) of 16, rotary base 10000, logits through `lm_head`/ },
  { name: 'llama-tiny-gqa-sharded', at: 'model.safetensors.index.json', description: /llama: .*`lm_head`/ },
  { name: 'qwen2-tiny-gqa', description: /qwen2: 2 layers, .* logits through the tied `model\.embed_tokens\.weight`/ },
  { name: 'bert-tiny', description: /bert: 2 layers, width 64, 4 heads of 16, 64 positions, masked-LM logits through the tied `bert\.embeddings\.word_embeddings\.weight`/ },
];

describe('LM forward passes reproduce the logits of transformers', () => {
  it('a folder is read through its model.safetensors, or its index when sharded; config.json and tokenizer.json beside', () => {
    const one = locateLmCheckpoint(hfFixture('gpt2-tiny'));
    assert.deepEqual([path.basename(one.weights), path.basename(one.config), path.basename(one.tokenizer ?? '')], ['model.safetensors', 'config.json', 'tokenizer.json']);
    assert.equal(path.basename(locateLmCheckpoint(hfFixture('llama-tiny-gqa-sharded')).weights), 'model.safetensors.index.json');
  });
  for (const c of CASES) {
    it(`${c.name}${c.at ? ` (through ${c.at})` : ''}`, async () => {
      const dir = hfFixture(c.name);
      const ref = await reference(dir);
      const lm = await loadLmCheckpoint(c.at ? path.join(dir, c.at) : dir);
      const model = buildLm(lm.tensors, lm.config, lm.paths.weights);
      try {
        assert.match(model.description, c.description);
        const [n, s, v] = ref.shape;
        const got = tf.tidy(() => model.logits(tf.tensor2d(ref.ids, [n, s], 'int32')).dataSync());
        assert.equal(got.length, n * s * v);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref.logits[i]));
        const scale = ref.logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        if (process.env.LM_VERBOSE) console.log(c.name, worst, scale);
        assert.ok(worst < 1e-4 * Math.max(1, scale), `largest difference ${worst} (logits up to ${scale})`);
      } finally {
        model.dispose();
      }
    });
  }
});

describe('parameter count from config.json alone', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny-gqa', 'qwen2-tiny-gqa', 'bert-tiny']) {
    it(`${name}: equals the parameters in the file`, async () => {
      const lm = await loadLmCheckpoint(hfFixture(name));
      const inFile = [...lm.tensors.values()].reduce((a, t) => a + t.data.length, 0);
      assert.equal(lmParameterCount(lm.config), inFile);
    });
  }
});
