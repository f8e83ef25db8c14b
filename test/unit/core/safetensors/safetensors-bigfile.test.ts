import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkpointSummary, openCheckpoint } from '../../../../src/core/safetensors';
import { BIG_BYTES, BIG_SHAPE, SMALL, writeSparseCheckpoint } from '../../helpers/sparseCheckpoint';
import { tmpDirFor } from '../../helpers/tmp';

const GiB = 1024 ** 3;

describe('a 10 GiB checkpoint', () => {
  it('opens and summarises from the header alone: fast, with flat memory, and reads a small tensor', async (t) => {
    const dir = await tmpDirFor(t, 'rebasin-bigfile-');
    const file = dir.file('big.safetensors');
    const size = writeSparseCheckpoint(file, { format: 'pt', note: 'sparse test file' });
    const info = await stat(file);
    assert.equal(info.size, size);
    assert.ok(info.size > 10 * GiB);
    assert.ok(info.blocks * 512 < 1024 * 1024, `the file is sparse (${info.blocks * 512} bytes on disk)`);

    // Warm the reader's code on a small file first, so the timing below is the big file's alone.
    await (await openCheckpoint(path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'syoyo', 'model.safetensors'))).close();
    const rssBefore = process.memoryUsage().rss;
    const start = performance.now();
    const ckpt = await openCheckpoint(file);
    const summary = checkpointSummary(ckpt);
    const elapsed = performance.now() - start;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    try {
      t.diagnostic(`open+summary of ${(size / GiB).toFixed(2)} GiB: ${elapsed.toFixed(1)} ms, rss +${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
      assert.ok(elapsed < 500, `opened in ${elapsed} ms`);
      assert.ok(rssGrowth < 50 * 2 ** 20, `rss grew by ${rssGrowth} bytes`);
      assert.equal(summary.totalBytes, BIG_BYTES + 16);
      assert.equal(summary.totalParams, 40960 * 65536 + 4);
      assert.deepEqual(summary.metadata, { format: 'pt', note: 'sparse test file' });
      assert.deepEqual(summary.tensors.map((x) => [x.name, x.dtype, x.shape, x.offsets]), [
        ['big', 'F32', BIG_SHAPE, [16, 16 + BIG_BYTES]],
        ['small', 'F32', [4], [0, 16]],
      ]);
      assert.deepEqual(await ckpt.readFloat32('small'), SMALL);
    } finally {
      await ckpt.close();
    }
  });
});
