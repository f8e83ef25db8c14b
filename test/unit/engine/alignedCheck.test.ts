/**
 * `barrier --aligned FILE` checks FILE against B (src/engine/alignedCheck.ts): π(B) for B's spec
 * passes; A, values shuffled inside a tensor against the spec, a NaN weight or another shape are
 * refused in one line naming FILE. Checked against plain references: π(B) built here by gathering
 * rows (MLP), and by core's gather with random head permutations (the GPT-2 fixture). Without an
 * inferable spec, FILE must compute B's function: the real equivalence handler runs both.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { checkAlignedCheckpoint, multisetHash } from '../../../src/engine/alignedCheck';
import { openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { inferSpec } from '../../../src/core/permspec';
import { readHfConfig } from '../../../src/core/families/hfConfig';
import { axisPermutations, permuteBytes, randomPermutations } from '../../../src/core/matching/permute';
import { randomMlp, tempDir, writeMlp, type Mlp } from '../helpers/engine-fixtures';
import { hfFixture } from '../helpers/hfFixtures';
import { initBackend } from '../../../src/engine/backend';
import { equivalenceHandler } from '../../../src/engine/handlers/equivalence';

/**
 * Writes B's weights file permuted by random spec permutations (seeded), then `extra` applied to
 * the named tensors' axes (a swap that breaks the spec, or none).
 */
async function writeGatheredCopy(bWeights: string, out: string, seed: number, extra: Record<string, (Int32Array | null)[]> = {}): Promise<void> {
  const ck = await openCheckpoint(bWeights);
  const spec = inferSpec(ck.tensors, readHfConfig(ck.path)).spec;
  const perms = randomPermutations(spec, seed);
  const sources = await Promise.all(ck.tensors.map(async (t) => {
    let bytes = permuteBytes(await ck.readRaw(t.name), t.shape, axisPermutations(spec, perms, t.name, t.shape.length))!;
    if (extra[t.name]) bytes = permuteBytes(bytes, t.shape, extra[t.name])!;
    return { name: t.name, dtype: t.dtype, shape: t.shape, read: async () => bytes };
  }));
  await ck.close();
  await writeSafetensors(out, sources);
}

/** The identity on n positions with positions i and j swapped. */
function swap(n: number, i: number, j: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, k) => k);
  p[i] = j;
  p[j] = i;
  return p;
}

/** B with the hidden units of layer 0 reversed: rows of layers.0, its bias, and columns of layers.1. */
function permuted(m: Mlp, nextLayer = true): Mlp {
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
  if (nextLayer) for (let r = 0; r < o; r++) for (let i = 0; i < h; i++) out.get('layers.1.weight')!.data[r * h + i] = w1.data[r * h + p(i)];
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
    const off = { allowNonFinite: false };
    await checkAlignedCheckpoint(f('pib.safetensors'), f('b.safetensors'), off);
    await assert.rejects(checkAlignedCheckpoint(f('a.safetensors'), f('b.safetensors'), off), /^EngineError: a\.safetensors: not an alignment of b\.safetensors \(tensor `layers\.0\.(weight|bias)` is not B's tensor permuted consistently with the spec\)/);
    // Rows of layer 0 reversed, the next layer's columns left alone: every tensor holds B's values
    // in some order (the earlier check passed it), but it is not π(B) and computes another function.
    await writeMlp(f('shuffled.safetensors'), permuted(b, false));
    await assert.rejects(checkAlignedCheckpoint(f('shuffled.safetensors'), f('b.safetensors'), off), /shuffled\.safetensors: not an alignment of b\.safetensors \(tensor `layers\.\d\.(weight|bias)` is not B's tensor permuted consistently/);
    const nan = permuted(b);
    nan.get('layers.1.weight')!.data[3] = NaN;
    await writeMlp(f('nan.safetensors'), nan);
    await assert.rejects(checkAlignedCheckpoint(f('nan.safetensors'), f('b.safetensors'), off), /nan\.safetensors: tensor `layers\.1\.weight` holds 1 NaN\/Inf value; allow non-finite/);
    // Allowed non-finite weights still have to be B's values.
    await assert.rejects(checkAlignedCheckpoint(f('nan.safetensors'), f('b.safetensors'), { allowNonFinite: true }), /tensor `layers\.1\.weight` is not B's tensor permuted/);
    await writeMlp(f('wide.safetensors'), randomMlp([6, 12, 4], 2));
    await assert.rejects(checkAlignedCheckpoint(f('wide.safetensors'), f('b.safetensors'), off), /tensor `layers\.0\.bias` is F32 \[12\], B.s is F32 \[10\]/);
  });

  it('GPT-2: passes B permuted with heads; refuses a shuffle that moves a dimension between heads', async () => {
    const b = hfFixture('gpt2-tiny');
    const weights = path.join(b, 'model.safetensors');
    const off = { allowNonFinite: false };
    await writeGatheredCopy(weights, f('gpt2-pi.safetensors'), 7);
    await checkAlignedCheckpoint(f('gpt2-pi.safetensors'), b, off);
    // v's dimension 0 of head 0 traded with dimension 0 of head 1 (4 heads of 16), in c_attn's
    // v columns and c_proj's matching rows: each tensor is a rearrangement of π(B)'s, consistent
    // between the two tensors, but no head permutation of the spec gives it.
    await writeGatheredCopy(weights, f('gpt2-heads.safetensors'), 7, {
      'transformer.h.0.attn.c_attn.weight': [null, swap(192, 128, 144)],
      'transformer.h.0.attn.c_attn.bias': [swap(192, 128, 144)],
      'transformer.h.0.attn.c_proj.weight': [swap(64, 0, 16), null],
    });
    await assert.rejects(checkAlignedCheckpoint(f('gpt2-heads.safetensors'), b, off), /^EngineError: gpt2-heads\.safetensors: not an alignment of model\.safetensors \(tensor `transformer\.h\.0\.attn\.c_(attn|proj)\.(weight|bias)` is not B's tensor permuted consistently with the spec\)/);
  });

  it("without an inferable spec: B's values in some order, and B's function (forward passes)", async () => {
    await initBackend('wasm');
    const widths = [6, 10, 4];
    const a = randomMlp(widths, 1);
    const b = randomMlp(widths, 2);
    // A scalar no layer reads: spec inference cannot place it, the forward pass ignores it.
    const temperature = { temperature: { dtype: 'F32', shape: [], bytes: new Uint8Array(new Float32Array([0.7]).buffer) } };
    await writeMlp(f('t-a.safetensors'), a, 'F32', temperature);
    await writeMlp(f('t-b.safetensors'), b, 'F32', temperature);
    await writeMlp(f('t-pib.safetensors'), permuted(b), 'F32', temperature);
    await writeMlp(f('t-shuffled.safetensors'), permuted(b, false), 'F32', temperature);
    const ctx = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
    let ran = 0;
    const opts = (other: string) => ({
      allowNonFinite: false,
      equivalence: () => {
        ran++;
        return equivalenceHandler({ kind: 'equivalence', b: f('t-b.safetensors'), other }, ctx);
      },
    });
    await checkAlignedCheckpoint(f('t-pib.safetensors'), f('t-b.safetensors'), opts(f('t-pib.safetensors')));
    assert.equal(ran, 1, 'π(B) went through the equivalence check');
    await assert.rejects(checkAlignedCheckpoint(f('t-a.safetensors'), f('t-b.safetensors'), opts(f('t-a.safetensors'))), /t-a\.safetensors: not an alignment of t-b\.safetensors \(tensor `layers\.0\.(weight|bias)` holds other values than B's/);
    await assert.rejects(
      checkAlignedCheckpoint(f('t-shuffled.safetensors'), f('t-b.safetensors'), opts(f('t-shuffled.safetensors'))),
      /^EngineError: t-shuffled\.safetensors: not an alignment of t-b\.safetensors \(it computes another function than B: largest logit difference [\d.e+-]+, [\d.e+-]+ of the largest logit, on random inputs\)/,
    );
  });
});
