/**
 * `barrier --aligned FILE` (issue 18, finding 11): FILE must be π(B). The file `align` wrote
 * passes; A itself (which gave a fake aligned barrier of 0) and π(B) with a NaN weight are
 * refused in one line naming FILE, before any evaluation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';
import { assertRefused, root, runCli } from '../helpers/hostile';

describe('barrier --aligned FILE (CLI)', () => {
  const tmp = tempDir('rebasin-barrier-aligned-');
  const f = (n: string): string => path.join(tmp.dir, n);
  const steps = ['--data', f('data.safetensors'), '--steps', '3', '--workers', '1'];

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    await writeMlp(f('a.safetensors'), randomMlp([8, 16, 12, 3], 1));
    await writeMlp(f('b.safetensors'), randomMlp([8, 16, 12, 3], 2));
    const n = 16;
    const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.cos(i * 0.3));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
    await writeSafetensors(f('data.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
  });
  after(() => tmp.cleanup());

  it('evaluates the file align wrote; refuses A and a NaN weight', async () => {
    const al = await runCli(['align', f('a.safetensors'), f('b.safetensors'), '--out', f('pib.safetensors')]);
    assert.equal(al.code, 0, al.stderr);
    const ok = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('pib.safetensors'), ...steps, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { alignedFrom: { source: string } }).alignedFrom.source, 'checkpoint');

    const fake = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('a.safetensors'), ...steps]);
    assertRefused(fake, 'a.safetensors', /not an alignment of b\.safetensors/);

    const ck = await openCheckpoint(f('pib.safetensors'));
    const sources = await Promise.all(ck.tensors.map(async (t) => {
      const data = await ck.readFloat32(t.name);
      if (t.name === 'layers.1.weight') data[5] = NaN;
      return { name: t.name, dtype: t.dtype, shape: t.shape, read: async () => encodeFromFloat32(t.dtype, data) };
    }));
    await ck.close();
    await writeSafetensors(f('nan.safetensors'), sources);
    const nan = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('nan.safetensors'), ...steps]);
    assertRefused(nan, 'nan.safetensors', /NaN\/Inf value; allow non-finite weights/);
  });
});
