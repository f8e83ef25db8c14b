/**
 * The `diffTensor` request: with the alignment's permutations, the tensor is drawn against π(B)
 * under the spec inferred from A (rows of layers.0.weight, columns of layers.1.weight), equal to
 * the picture of B permuted by hand; without them, against B; a missing tensor is one line naming
 * the file by its base name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Progress } from '../../../../src/core/checkpoint';
import { encodeFromFloat32, writeSafetensors } from '../../../../src/core/safetensors';
import { diffTensorHandler } from '../../../../src/engine/handlers/diffTensor';
import { tmpDirFor } from '../../helpers/tmp';

function ctx(progress: Progress[] = []) {
  return { signal: new AbortController().signal, onProgress: (p: Progress) => progress.push(p), log: () => undefined };
}

const p = [2, 0, 3, 1];

async function mlp(file: string, shift: number, permuted = false): Promise<void> {
  const w0 = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) + shift * (i % 5));
  const w1 = Float32Array.from({ length: 8 }, (_, i) => Math.cos(i) + shift * (i % 3));
  const rows = (x: Float32Array, cols: number) => (permuted ? Float32Array.from(x, (_, i) => x[p[Math.floor(i / cols)] * cols + (i % cols)]) : x);
  const colsOf = (x: Float32Array, cols: number) => (permuted ? Float32Array.from(x, (_, i) => x[Math.floor(i / cols) * cols + p[i % cols]]) : x);
  const t = (name: string, shape: number[], v: Float32Array) => ({ name, dtype: 'F32', shape, read: async () => encodeFromFloat32('F32', v) });
  await writeSafetensors(file, [
    t('layers.0.weight', [4, 3], rows(w0, 3)),
    t('layers.0.bias', [4], rows(Float32Array.of(1, 2, 3, 4), 1)),
    t('layers.1.weight', [2, 4], colsOf(w1, 4)),
    t('layers.1.bias', [2], Float32Array.of(0.5, -0.5)),
  ]);
}

test('π(B) drawn with the permutations under the inferred spec equals B permuted by hand', async (t) => {
  const dir = await tmpDirFor(t);
  const [a, b, pib] = ['a', 'b', 'pib'].map((n) => dir.file(`${n}.safetensors`));
  await mlp(a, 0);
  await mlp(b, 0.1);
  await mlp(pib, 0.1, true);
  for (const tensor of ['layers.0.weight', 'layers.1.weight']) {
    const progress: Progress[] = [];
    const aligned = await diffTensorHandler({ kind: 'diffTensor', a, b, tensor, perms: { 'P_layers.0': p } }, ctx(progress));
    const byHand = await diffTensorHandler({ kind: 'diffTensor', a, b: pib, tensor }, ctx());
    assert.deepEqual(aligned, byHand, tensor);
    const naive = await diffTensorHandler({ kind: 'diffTensor', a, b, tensor }, ctx());
    assert.notDeepEqual(naive.heatmap.values, aligned.heatmap.values, tensor);
    assert.match(progress[0]?.message ?? '', new RegExp(`Drawing \`${tensor}\` of a\\.safetensors and π\\(B\\) b\\.safetensors`));
    assert.deepEqual([progress.at(-1)?.fraction, progress.at(-1)?.message?.endsWith(': pass 2 of 2')], [1, true]);
  }
});

test('a missing tensor or a vector: one line naming the file by its base name', async (t) => {
  const dir = await tmpDirFor(t);
  const [a, b] = ['a', 'b'].map((n) => dir.file(`${n}.safetensors`));
  await mlp(a, 0);
  await mlp(b, 0.1);
  await assert.rejects(diffTensorHandler({ kind: 'diffTensor', a, b, tensor: 'nope' }, ctx()), (e: Error) => e.message === 'a.safetensors: tensor `nope` not found');
  await assert.rejects(diffTensorHandler({ kind: 'diffTensor', a, b, tensor: 'layers.0.bias' }, ctx()), (e: Error) => e.message === 'a.safetensors: tensor `layers.0.bias` has 1 axis; a picture needs 2 or more');
});
