/**
 * `rebasin align --out-of-core` (built CLI) on a sharded BF16 Llama pair (the scale bench's tiny
 * preset, B = A under a known residual and MLP permutation): the tensors are read from disk per
 * product (logged with --debug), the output is written shard by shard as B is, and it is A bit for
 * bit; the JSON is the in-memory run's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openCheckpoint } from '../../../src/core/safetensors';
import type { AlignResult } from '../../../src/engine/protocol';
import { generateLlamaPair, PRESETS, type GeneratedPair } from '../../../bench/scale/generate';
import { buildDist, runCli } from '../helpers/cli';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
let pair: GeneratedPair;
before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-ooc-cli-');
  pair = await generateLlamaPair({ shape: PRESETS.tiny, dir: tmp.file('pair'), seed: 5, permute: { heads: false }, maxShardBytes: 8 * 1024 });
});
after(() => tmp.remove());

describe('rebasin align --out-of-core', () => {
  it('reads the tensors from disk per product and writes π(B) = A, as the in-memory run does', async () => {
    const streamed = runCli(['align', pair.a, pair.b, '--out', tmp.file('streamed'), '--out-of-core', '--json', '--debug', '--backend', 'wasm']);
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.match(streamed.stderr, /align: out of core, asked for \(--out-of-core\): tensors are read from disk as each product needs them/);
    assert.match(streamed.stderr, /align: out of core: read [\d,]+ tensors \(.*, page cache included\) in [\d.]+ s of reads; at most .* of tensors held at once/);
    const held = runCli(['align', pair.a, pair.b, '--out', tmp.file('held'), '--json', '--backend', 'wasm']);
    assert.equal(held.code, 0, held.stderr);
    const s = JSON.parse(streamed.stdout) as AlignResult;
    const h = JSON.parse(held.stdout) as AlignResult;
    assert.deepEqual(s.perms, h.perms);
    assert.equal(s.objectiveAfter, h.objectiveAfter);
    const a = await openCheckpoint(path.join(pair.a, 'model.safetensors.index.json'));
    const o = await openCheckpoint(path.join(tmp.file('streamed'), 'model.safetensors.index.json'));
    try {
      assert.equal(o.format, 'sharded');
      for (const t of a.tensors) assert.ok(Buffer.from(await a.readRaw(t.name)).equals(Buffer.from(await o.readRaw(t.name))), t.name);
    } finally {
      await a.close();
      await o.close();
    }
  });
});
