/**
 * Chunked tensor reads (diff, scan): ranges of the raw bytes, refused outside the tensor; values
 * chunk by chunk equal the whole tensor's (F64 and 64-bit integers as float64), from a single
 * file, its shards, and a reader without range reads.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Checkpoint } from '../../../../src/core/checkpoint';
import { openCheckpoint, openSafetensors } from '../../../../src/core/safetensors';
import { decodeValues, tensorValueChunks } from '../../../../src/core/safetensors/chunks';

const FLUX = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml');

async function collect(ck: Checkpoint, name: string, chunk: number): Promise<number[]> {
  const out: number[] = [];
  for await (const x of tensorValueChunks(ck, name, chunk)) {
    assert.ok(x.length <= chunk);
    out.push(...x);
  }
  return out;
}

test('range reads are the raw bytes; a range outside the tensor is refused naming it', async () => {
  const ck = await openSafetensors(path.join(FLUX, 'non_sharded', 'model.safetensors'));
  try {
    const raw = await ck.readRaw('float64_35');
    assert.deepEqual(await ck.readRawRange('float64_35', 8, 40), raw.subarray(8, 40));
    await assert.rejects(ck.readRawRange('float64_35', 0, raw.length + 1), /outside tensor `float64_35`|outside .*float64_35/);
    await assert.rejects(ck.readRawRange('float64_35', -1, 4), /float64_35/);
  } finally {
    await ck.close();
  }
});

test('values chunk by chunk equal the whole tensor, from the file, its shards and a reader without range reads', async () => {
  const single = await openCheckpoint(path.join(FLUX, 'non_sharded', 'model.safetensors'));
  const sharded = await openCheckpoint(path.join(FLUX, 'sharded', 'model.safetensors.index.json'));
  // The same checkpoint seen through the required methods only (as a reader of another format may be).
  const wholeOnly: Checkpoint = {
    path: single.path, format: single.format, metadata: single.metadata, tensors: single.tensors,
    get: (n) => single.get(n), readRaw: (n) => single.readRaw(n), readFloat32: (n) => single.readFloat32(n), close: async () => undefined,
  };
  try {
    for (const t of single.tensors) {
      const whole = Array.from(decodeValues(t.dtype, await single.readRaw(t.name)));
      for (const ck of [single, sharded, wholeOnly]) assert.deepEqual(await collect(ck, t.name, 4), whole, `${t.name} from ${ck.format}`);
    }
    const f64 = Array.from(decodeValues('F64', await single.readRaw('float64_35')));
    assert.deepEqual(f64, Array.from(new Float64Array((await single.readRaw('float64_35')).buffer)), 'F64 keeps float64 precision');
  } finally {
    await single.close();
    await sharded.close();
  }
});
