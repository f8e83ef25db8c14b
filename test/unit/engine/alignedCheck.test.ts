/**
 * `barrier --aligned FILE` checks FILE against B (src/engine/alignedCheck.ts): a permutation of
 * B's units passes; A, a file with other values, a NaN weight or another shape are refused in
 * one line naming FILE. Checked against a plain reference: π(B) built here by gathering rows.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { checkAlignedCheckpoint, multisetHash } from '../../../src/engine/alignedCheck';
import { randomMlp, tempDir, writeMlp, type Mlp } from '../helpers/engine-fixtures';

/** B with the hidden units of layer 0 reversed: rows of layers.0, its bias, and columns of layers.1. */
function permuted(m: Mlp): Mlp {
  const out: Mlp = new Map([...m].map(([n, t]) => [n, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
  const w0 = m.get('layers.0.weight')!;
  const b0 = m.get('layers.0.bias')!;
  const w1 = m.get('layers.1.weight')!;
  const [h, inDim] = w0.shape;
  const p = (i: number): number => h - 1 - i;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < inDim; j++) out.get('layers.0.weight')!.data[i * inDim + j] = w0.data[p(i) * inDim + j];
    out.get('layers.0.bias')!.data[i] = b0.data[p(i)];
  }
  const [o] = w1.shape;
  for (let r = 0; r < o; r++) for (let i = 0; i < h; i++) out.get('layers.1.weight')!.data[r * h + i] = w1.data[r * h + p(i)];
  return out;
}

describe('aligned checkpoint check', () => {
  const tmp = tempDir('rebasin-aligned-check-');
  after(() => tmp.cleanup());
  const f = (n: string): string => path.join(tmp.dir, n);

  it('the multiset hash ignores order and sees a changed value', () => {
    const x = new Float32Array([1, 2, 3, -0, NaN]);
    const y = new Float32Array([3, NaN, -0, 1, 2]);
    const z = new Float32Array([3, NaN, 0, 1, 2]);
    const h = (a: Float32Array, size = 4): [number, number] => multisetHash(new Uint8Array(a.buffer), size);
    assert.deepEqual(h(x), h(y));
    assert.notDeepEqual(h(x), h(z), '+0 and -0 are different bytes');
    const d = new Float64Array([1.5, 2.5]);
    assert.deepEqual(multisetHash(new Uint8Array(d.buffer), 8), multisetHash(new Uint8Array(new Float64Array([2.5, 1.5]).buffer), 8));
  });

  it('passes π(B); refuses A, a NaN weight, other shapes', async () => {
    const widths = [6, 10, 4];
    const a = randomMlp(widths, 1);
    const b = randomMlp(widths, 2);
    await writeMlp(f('a.safetensors'), a);
    await writeMlp(f('b.safetensors'), b);
    await writeMlp(f('pib.safetensors'), permuted(b));
    await checkAlignedCheckpoint(f('pib.safetensors'), f('b.safetensors'), false);
    await assert.rejects(checkAlignedCheckpoint(f('a.safetensors'), f('b.safetensors'), false), /a\.safetensors: not an alignment of b\.safetensors \(tensor `layers\.0\.(weight|bias)` holds other values/);
    const nan = permuted(b);
    nan.get('layers.1.weight')!.data[3] = NaN;
    await writeMlp(f('nan.safetensors'), nan);
    await assert.rejects(checkAlignedCheckpoint(f('nan.safetensors'), f('b.safetensors'), false), /nan\.safetensors: tensor `layers\.1\.weight` holds 1 NaN\/Inf value; allow non-finite/);
    // Allowed non-finite weights still have to be B's values.
    await assert.rejects(checkAlignedCheckpoint(f('nan.safetensors'), f('b.safetensors'), true), /holds other values/);
    await writeMlp(f('wide.safetensors'), randomMlp([6, 12, 4], 2));
    await assert.rejects(checkAlignedCheckpoint(f('wide.safetensors'), f('b.safetensors'), false), /tensor `layers\.0\.bias` is F32 \[12\], B.s is F32 \[10\]/);
  });
});
