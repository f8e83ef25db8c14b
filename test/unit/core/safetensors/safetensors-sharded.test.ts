import assert from 'node:assert/strict';
import { cp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  SafetensorsError,
  checkpointSummary,
  encodeFromFloat32,
  openCheckpoint,
  writeSafetensors,
  type SafetensorsErrorKind,
} from '../../../../src/core/safetensors';
import { tmpDirFor, type TmpDir } from '../../helpers/tmp';

const SHARDED = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml', 'sharded');
const INDEX_NAME = 'model.safetensors.index.json';

interface Index {
  metadata: Record<string, unknown>;
  weight_map: Record<string, string>;
}

/** A writable copy of the fixture's sharded checkpoint. */
async function shardedCopy(t: Parameters<typeof tmpDirFor>[0]): Promise<{ dir: TmpDir; index: string; json: Index }> {
  const dir = await tmpDirFor(t, 'rebasin-sharded-');
  await cp(SHARDED, dir.path, { recursive: true });
  const index = dir.file(INDEX_NAME);
  return { dir, index, json: JSON.parse(await readFile(index, 'utf8')) as Index };
}

function isError(kind: SafetensorsErrorKind, message?: RegExp, tensor?: string) {
  return (e: unknown): true => {
    assert.ok(e instanceof SafetensorsError, `not a SafetensorsError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    if (tensor !== undefined) assert.equal(e.tensor, tensor);
    assert.ok(!e.message.includes('\n'));
    return true;
  };
}

describe('sharded checkpoints', () => {
  it('opens through the index, summarises all shards, and ignores a wrong total_size', async (t) => {
    const { index, json } = await shardedCopy(t);
    await writeFile(index, JSON.stringify({ ...json, metadata: { total_size: 1 } }));
    const ckpt = await openCheckpoint(index);
    try {
      const summary = checkpointSummary(ckpt);
      assert.equal(summary.format, 'sharded');
      assert.equal(summary.tensors.length, Object.keys(json.weight_map).length);
      assert.equal(summary.totalBytes, json.metadata.total_size);
      assert.deepEqual(summary.tensors.map((t) => t.name), Object.keys(json.weight_map).sort());
      assert.equal((await ckpt.readFloat32('float32_357')).length, 105);
    } finally {
      await ckpt.close();
    }
  });

  it('names a missing shard', async (t) => {
    const { dir, index } = await shardedCopy(t);
    await rm(dir.file('model-00004-of-00006.safetensors'));
    await assert.rejects(openCheckpoint(index), isError('MissingShard', /^[^/\s]+\/model\.safetensors\.index\.json: shard `model-00004-of-00006\.safetensors` \(holding tensor `[^`]+`\) does not exist$/));
  });

  it('names a tensor present in two shards', async (t) => {
    const { dir, index, json } = await shardedCopy(t);
    // A seventh shard that also holds `int8_3` (already in another shard).
    await writeSafetensors(dir.file('extra.safetensors'), [
      { name: 'int8_3', dtype: 'I8', shape: [3], read: async () => Uint8Array.of(1, 2, 3) },
      { name: 'extra', dtype: 'F32', shape: [1], read: async () => encodeFromFloat32('F32', Float32Array.of(1)) },
    ]);
    json.weight_map.extra = 'extra.safetensors';
    await writeFile(index, JSON.stringify(json));
    await assert.rejects(openCheckpoint(index), isError('DuplicateTensor', /tensor `int8_3` is in two shards: `extra\.safetensors` and `model-0000\d-of-00006\.safetensors`/, 'int8_3'));
  });

  it('names a tensor the map places in a shard that lacks it', async (t) => {
    const { index, json } = await shardedCopy(t);
    const home = json.weight_map.float16_3;
    const elsewhere = Object.values(json.weight_map).find((s) => s !== home) ?? '';
    json.weight_map.float16_3 = elsewhere;
    await writeFile(index, JSON.stringify(json));
    await assert.rejects(
      openCheckpoint(index),
      isError('TensorNotFound', new RegExp(`tensor \`float16_3\` is mapped to \`${elsewhere}\` but that shard does not hold it \\(it is in \`${home}\`\\)`), 'float16_3'),
    );
    json.weight_map.ghost = home;
    json.weight_map.float16_3 = home;
    await writeFile(index, JSON.stringify(json));
    await assert.rejects(openCheckpoint(index), isError('TensorNotFound', /tensor `ghost`/, 'ghost'));
  });

  it('refuses malformed indexes and shards outside the folder', async (t) => {
    const { dir, index, json } = await shardedCopy(t);
    await writeFile(index, '{"weight_map": ');
    await assert.rejects(openCheckpoint(index), isError('InvalidJson'));
    await writeFile(index, JSON.stringify({ metadata: {} }));
    await assert.rejects(openCheckpoint(index), isError('InvalidIndex', /no `weight_map` object/));
    await writeFile(index, JSON.stringify({ weight_map: { a: 3 } }));
    await assert.rejects(openCheckpoint(index), isError('InvalidIndex', /not a file name/));
    await writeFile(index, JSON.stringify({ weight_map: { a: '../elsewhere.safetensors' } }));
    await assert.rejects(openCheckpoint(index), isError('InvalidIndex', /outside the index's folder/));
    await writeFile(index, JSON.stringify({ weight_map: { a: '/etc/passwd' } }));
    await assert.rejects(openCheckpoint(index), isError('InvalidIndex'));
    await writeFile(index, '{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}');
    await assert.rejects(openCheckpoint(index), isError('DuplicateKey'));
    // A broken shard fails with its own file named.
    await writeFile(index, JSON.stringify(json));
    await truncate(dir.file('model-00002-of-00006.safetensors'), 500);
    await assert.rejects(openCheckpoint(index), (e: unknown) => {
      isError('MetadataIncompleteBuffer')(e);
      assert.match((e as SafetensorsError).message, /^[^/\s]+\/model-00002-of-00006\.safetensors: /, 'a shard is named with its folder');
      return true;
    });
  });
});
