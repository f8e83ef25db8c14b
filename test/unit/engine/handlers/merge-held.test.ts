/**
 * Merge with alignment on BF16 checkpoints, whose spec tensors weight matching holds as stored
 * (src/core/heldTensor.ts): on a tiny synthetic Llama pair where B is a known permutation of A
 * (residual stream, MLPs, KV groups and heads), the aligned midpoint (A + π(B)) / 2 is A itself,
 * written in BF16 bit for bit, in A's Hugging Face layout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { mergeHandler } from '../../../../src/engine/handlers/merge';
import { generateLlamaPair, PRESETS } from '../../../../bench/scale/generate';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-merge-held-');
});
after(() => tmp.remove());

async function rawTensors(dir: string): Promise<Map<string, { dtype: string; bytes: Buffer }>> {
  const ck = await openCheckpoint(path.join(dir, 'model.safetensors.index.json'));
  try {
    const out = new Map<string, { dtype: string; bytes: Buffer }>();
    for (const t of ck.tensors) out.set(t.name, { dtype: t.dtype, bytes: Buffer.from(await ck.readRaw(t.name)) });
    return out;
  } finally {
    await ck.close();
  }
}

test('aligned merge of a BF16 pair related by a known permutation gives A bit for bit', async () => {
  const pair = await generateLlamaPair({ shape: PRESETS.tiny, dir: tmp.file('pair'), seed: 11, maxShardBytes: 16 * 1024 });
  const out = tmp.file('merged');
  const logs: string[] = [];
  const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: (m) => logs.push(m) };
  const r = await mergeHandler({ kind: 'merge', inputs: [pair.a, pair.b], out, lambda: 0.5, align: true, seed: 0, maxIter: 20 }, ctx);
  assert.equal(r.method, 'weight');
  const a = await rawTensors(pair.a);
  const merged = await rawTensors(out);
  assert.deepEqual([...merged.keys()], [...a.keys()]);
  for (const [name, t] of a) {
    const m = merged.get(name)!;
    assert.equal(m.dtype, 'BF16', name);
    assert.ok(m.bytes.equals(t.bytes), `${name} equals A's`);
  }
});
