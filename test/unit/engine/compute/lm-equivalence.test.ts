/**
 * The equivalence check of a Hugging Face checkpoint (paper section 2: pi(B) computes B's
 * function) runs B and pi(B) through the LM forward pass its config.json describes, the pass that
 * reproduces `transformers`' logits: heads, KV groups and RoPE as the file says. A random element
 * of the inferred group keeps the logits; swapping two q/k dimensions inside a RoPE head (the
 * same swap in q and k, harmless without rotary embeddings) does not, and the check says so.
 * Through the align handler a Llama folder is checked (before, it was skipped: "cannot tell the
 * number of attention heads").
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
import { checkLmEquivalence } from '../../../../src/engine/compute/transformerEquivalence';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

function specOf(dir: string, tensors: TensorMap): PermSpec {
  const hf = readHfConfig(path.join(dir, 'model.safetensors'));
  return inferSpec([...tensors].map(([name, t]) => ({ name, shape: [...t.shape] })), hf).spec;
}

/** `tensors` with rows r and s of each named [out, in] weight swapped. */
function swapRows(tensors: TensorMap, names: readonly string[], r: number, s: number): TensorMap {
  const out = new Map(tensors);
  for (const name of names) {
    const t = tensors.get(name)!;
    const cols = t.shape[1];
    const data = Float32Array.from(t.data);
    for (let c = 0; c < cols; c++) [data[r * cols + c], data[s * cols + c]] = [data[s * cols + c], data[r * cols + c]];
    out.set(name, { shape: t.shape, data });
  }
  return out;
}

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-lm-eq-');
});
after(() => tmp.remove());

describe('equivalence check through the LM forward pass', () => {
  for (const fixture of ['gpt2-tiny', 'llama-tiny-gqa', 'bert-tiny'] as const) {
    it(`${fixture}: a random element of the inferred group keeps the logits`, async () => {
      const dir = hfFixture(fixture);
      const lm = await loadLmCheckpoint(dir);
      const spec = specOf(dir, lm.tensors);
      const piB = applyPermutations(spec, randomPermutations(spec, 3), lm.tensors);
      const { report, description } = checkLmEquivalence(lm.tensors, piB, lm.config);
      assert.equal(report.ok, true, `${fixture}: ${report.message ?? ''} (${report.relDiff})`);
      assert.match(description, /4 heads/);
    });
  }

  it('llama-tiny-gqa: swapping two q/k dimensions of a rotary head changes the function, and the check says so', async () => {
    const dir = hfFixture('llama-tiny-gqa');
    const lm = await loadLmCheckpoint(dir);
    // Dimension 0 and 1 of head 0: the same swap in q and k leaves q·k unchanged without RoPE,
    // but moves the dimensions to other rotary frequencies.
    const broken = swapRows(lm.tensors, ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight'], 0, 1);
    const { report } = checkLmEquivalence(lm.tensors, broken, lm.config);
    assert.equal(report.ok, false);
    assert.match(report.message ?? '', /different function/);
  });

  it('the align handler checks a Llama folder (RoPE, 2 KV groups) against a permuted copy of itself', async () => {
    const src = hfFixture('llama-tiny-gqa');
    const lm = await loadLmCheckpoint(src);
    const spec = specOf(src, lm.tensors);
    const b = applyPermutations(spec, randomPermutations(spec, 8), lm.tensors);
    const dirB = tmp.file('llama-b');
    mkdirSync(dirB);
    copyFileSync(path.join(src, 'config.json'), path.join(dirB, 'config.json'));
    const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    await writeSafetensors(path.join(dirB, 'model.safetensors'), [...b].map(([name, x]) => ({ name, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
    const logs: string[] = [];
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
    const r = await alignHandler({ kind: 'align', a: src, b: dirB, method: 'weight', seed: 0, maxIter: 100 }, ctx);
    assert.equal(r.equivalence?.ok, true, logs.join('\n'));
    assert.equal(logs.some((l) => /equivalence check skipped/.test(l)), false, logs.join('\n'));
    assert.ok(logs.some((l) => /equivalence: llama: .*2 key\/value/.test(l)), logs.join('\n'));
  });
});
