/**
 * `barrier --aligned FILE` (issue 18, finding 11): FILE must be π(B). The file `align` wrote
 * passes; A itself (which gave a fake aligned barrier of 0), π(B) with a NaN weight and π(B) with
 * the rows of its first layer shuffled against the next layer (each tensor still holds B's values)
 * are refused in one line naming FILE, before any evaluation. A model whose spec cannot be
 * inferred (a scalar no layer reads) is checked by its function: π(B) passes, the shuffle is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { permuteBytes } from '../../../src/core/matching/permute';
import { permuteMlp, randomMlp, randomPerm, tempDir, writeMlp } from '../helpers/engine-fixtures';
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

  /** π(B) as align wrote it, with `change` applied to each tensor's float32 values. */
  async function alteredCopy(out: string, change: (name: string, data: Float32Array, shape: readonly number[]) => Float32Array): Promise<void> {
    const ck = await openCheckpoint(f('pib.safetensors'));
    const sources = await Promise.all(ck.tensors.map(async (t) => {
      const data = change(t.name, await ck.readFloat32(t.name), t.shape);
      return { name: t.name, dtype: t.dtype, shape: t.shape, read: async () => encodeFromFloat32(t.dtype, data) };
    }));
    await ck.close();
    await writeSafetensors(out, sources);
  }

  it('evaluates the file align wrote; refuses A, a NaN weight and a shuffle against the spec', async () => {
    const al = await runCli(['align', f('a.safetensors'), f('b.safetensors'), '--out', f('pib.safetensors')]);
    assert.equal(al.code, 0, al.stderr);
    const ok = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('pib.safetensors'), ...steps, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { alignedFrom: { source: string } }).alignedFrom.source, 'checkpoint');

    const fake = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('a.safetensors'), ...steps]);
    assertRefused(fake, 'a.safetensors', /not an alignment of b\.safetensors \(tensor `layers\.0\.(weight|bias)` is not B's tensor permuted consistently with the spec\)/);

    await alteredCopy(f('nan.safetensors'), (name, data) => {
      if (name === 'layers.1.weight') data[5] = NaN;
      return data;
    });
    const nan = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('nan.safetensors'), ...steps]);
    assertRefused(nan, 'nan.safetensors', /NaN\/Inf value; allow non-finite weights/);

    // Layer 0's hidden units reversed (rows of its weight, its bias), layer 1's columns left as
    // they are: every tensor holds the values align wrote, in another order, yet it is another network.
    const reversed = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => n - 1 - i);
    await alteredCopy(f('shuffled.safetensors'), (name, data, shape) => {
      if (name !== 'layers.0.weight' && name !== 'layers.0.bias') return data;
      const axes = shape.map((n, d) => (d === 0 ? reversed(n) : null));
      return new Float32Array(permuteBytes(new Uint8Array(data.buffer), shape, axes)!.buffer);
    });
    const shuffled = await runCli(['barrier', f('a.safetensors'), f('b.safetensors'), '--aligned', f('shuffled.safetensors'), ...steps]);
    assertRefused(shuffled, 'shuffled.safetensors', /not an alignment of b\.safetensors \(tensor `layers\.\d\.(weight|bias)` is not B's tensor permuted consistently with the spec\)/);
  });

  it('without an inferable spec: evaluates a permuted copy, refuses one that computes another function', async () => {
    const temperature = { temperature: { dtype: 'F32', shape: [], bytes: new Uint8Array(new Float32Array([0.7]).buffer) } };
    const b = randomMlp([8, 16, 12, 3], 2);
    await writeMlp(f('t-a.safetensors'), randomMlp([8, 16, 12, 3], 1), 'F32', temperature);
    await writeMlp(f('t-b.safetensors'), b, 'F32', temperature);
    await writeMlp(f('t-pib.safetensors'), permuteMlp(b, [randomPerm(16, 3), randomPerm(12, 4)]), 'F32', temperature);
    const ok = await runCli(['barrier', f('t-a.safetensors'), f('t-b.safetensors'), '--aligned', f('t-pib.safetensors'), ...steps, '--json']);
    assert.equal(ok.code, 0, ok.stderr);

    // Layer 0's rows reversed without layer 1's columns: B's values, another function.
    const shuffled = new Map([...b].map(([k, t]) => [k, { shape: t.shape, data: t.data.slice() }]));
    const [rows, cols] = b.get('layers.0.weight')!.shape;
    for (let r = 0; r < rows; r++) {
      shuffled.get('layers.0.weight')!.data.set(b.get('layers.0.weight')!.data.subarray((rows - 1 - r) * cols, (rows - r) * cols), r * cols);
      shuffled.get('layers.0.bias')!.data[r] = b.get('layers.0.bias')!.data[rows - 1 - r];
    }
    await writeMlp(f('t-shuffled.safetensors'), shuffled, 'F32', temperature);
    const bad = await runCli(['barrier', f('t-a.safetensors'), f('t-b.safetensors'), '--aligned', f('t-shuffled.safetensors'), ...steps]);
    assertRefused(bad, 't-shuffled.safetensors', /not an alignment of t-b\.safetensors \(it computes another function than B: largest logit difference .* on examples of the data\)/);
  });
});
