/**
 * Spec inference on Flax names and layouts (src/core/permspec/flaxLayout.ts): Dense kernels [in, out],
 * Conv kernels HWIO, BatchNorm scale/bias with batch_stats mean/var, collection prefixes; and the
 * PyTorch-layout view the forward passes read. Fixtures: test/fixtures/formats (SOURCES.md).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { DenseTensor } from '../../../../src/core/checkpoint';
import { openCheckpoint } from '../../../../src/core/formats';
import { flaxTensorsAsTorch, looksFlax } from '../../../../src/core/permspec/flaxLayout';
import { inferSpec } from '../../../../src/core/permspec';

const FORMATS = path.join(__dirname, '..', '..', '..', 'fixtures', 'formats');

async function readAll(file: string): Promise<Map<string, DenseTensor>> {
  const c = await openCheckpoint(file);
  try {
    const out = new Map<string, DenseTensor>();
    for (const t of c.tensors) out.set(t.name, { shape: [...t.shape], data: await c.readFloat32(t.name) });
    return out;
  } finally {
    await c.close();
  }
}

describe('Flax layouts', () => {
  it('the paper\'s MLP (Dense_i/kernel [in, out]): the PyTorch spec with each kernel\'s axes swapped', async () => {
    const flax = await openCheckpoint(path.join(FORMATS, 'mlp.msgpack'));
    const torch = await openCheckpoint(path.join(FORMATS, 'mlp.safetensors'));
    try {
      const f = inferSpec(flax.tensors);
      const t = inferSpec(torch.tensors);
      assert.equal(f.family, 'mlp');
      assert.deepEqual(Object.values(f.spec.perms), Object.values(t.spec.perms));
      for (let i = 0; i < 3; i++) {
        const w = t.spec.axes[`layers.${i}.weight`];
        const rename = (p: string | null | object): unknown => (typeof p === 'string' ? p.replace(/^P_layers\.(\d+)$/, 'P_Dense_$1') : p);
        assert.deepEqual(f.spec.axes[`Dense_${i}/kernel`], [rename(w[1]), rename(w[0])]);
        assert.deepEqual(f.spec.axes[`Dense_${i}/bias`], t.spec.axes[`layers.${i}.bias`].map(rename));
      }
    } finally {
      await flax.close();
      await torch.close();
    }
  });

  it('a conv stack (Conv HWIO, BatchNorm scale/bias and batch_stats mean/var, then Dense)', () => {
    const tensors = [
      { name: 'params/Conv_0/kernel', shape: [3, 3, 3, 8] },
      { name: 'params/Conv_0/bias', shape: [8] },
      { name: 'params/BatchNorm_0/scale', shape: [8] },
      { name: 'params/BatchNorm_0/bias', shape: [8] },
      { name: 'batch_stats/BatchNorm_0/mean', shape: [8] },
      { name: 'batch_stats/BatchNorm_0/var', shape: [8] },
      { name: 'params/Conv_1/kernel', shape: [3, 3, 8, 16] },
      { name: 'params/Conv_1/bias', shape: [16] },
      { name: 'params/Dense_0/kernel', shape: [16, 10] },
      { name: 'params/Dense_0/bias', shape: [10] },
    ];
    assert.ok(looksFlax(tensors));
    const r = inferSpec(tensors);
    assert.equal(r.family, 'vgg');
    const a = r.spec.axes;
    const p0 = a['params/Conv_0/bias'][0];
    const p1 = a['params/Conv_1/bias'][0];
    assert.ok(typeof p0 === 'string' && typeof p1 === 'string' && p0 !== p1);
    assert.deepEqual(a['params/Conv_0/kernel'], [null, null, null, p0]);
    assert.deepEqual(a['params/Conv_1/kernel'], [null, null, p0, p1]);
    for (const n of ['params/BatchNorm_0/scale', 'params/BatchNorm_0/bias', 'batch_stats/BatchNorm_0/mean', 'batch_stats/BatchNorm_0/var']) assert.deepEqual(a[n], [p0], n);
    assert.deepEqual(a['params/Dense_0/kernel'], [p1, null]);
    assert.deepEqual(r.spec.perms, { [p0]: 8, [p1]: 16 });
  });

  it('the paper\'s VGG naming (Conv_i, LayerNorm_i after Conv_i, then Dense_i): each LayerNorm takes its Conv\'s permutation', () => {
    const widths = [3, 8, 16, 16];
    const tensors: { name: string; shape: number[] }[] = [];
    for (let i = 0; i < 3; i++) {
      tensors.push({ name: `Conv_${i}/kernel`, shape: [3, 3, widths[i], widths[i + 1]] }, { name: `Conv_${i}/bias`, shape: [widths[i + 1]] });
      tensors.push({ name: `LayerNorm_${i}/scale`, shape: [widths[i + 1]] }, { name: `LayerNorm_${i}/bias`, shape: [widths[i + 1]] });
    }
    tensors.push({ name: 'Dense_0/kernel', shape: [16, 32] }, { name: 'Dense_0/bias', shape: [32] }, { name: 'Dense_1/kernel', shape: [32, 10] }, { name: 'Dense_1/bias', shape: [10] });
    const r = inferSpec(tensors);
    assert.equal(r.family, 'vgg');
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(r.spec.axes[`LayerNorm_${i}/scale`], [`P_Conv_${i}`]);
      assert.deepEqual(r.spec.axes[`Conv_${i}/kernel`], [null, null, i === 0 ? null : `P_Conv_${i - 1}`, `P_Conv_${i}`]);
    }
    assert.deepEqual(r.spec.axes['Dense_0/kernel'], ['P_Conv_2', 'P_Dense_0']);
    assert.deepEqual(r.spec.axes['Dense_1/kernel'], ['P_Dense_0', null]);
  });

  it('the paper\'s ResNet-20 naming (blockgroups_G/blocks_B, LayerNorm, 3x3 conv shortcuts): the CIFAR ResNet spec', () => {
    const tensors: { name: string; shape: number[] }[] = [];
    const conv = (name: string, i: number, o: number): void => void tensors.push({ name: `params/${name}/kernel`, shape: [3, 3, i, o] });
    const norm = (name: string, c: number): void => void tensors.push({ name: `params/${name}/scale`, shape: [c] }, { name: `params/${name}/bias`, shape: [c] });
    conv('conv1', 3, 16);
    norm('norm1', 16);
    const widths = [16, 32, 64];
    for (let g = 0; g < 3; g++) {
      for (let b = 0; b < 2; b++) {
        const p = `blockgroups_${g}/blocks_${b}`;
        const inC = b === 0 && g > 0 ? widths[g - 1] : widths[g];
        conv(`${p}/conv1`, inC, widths[g]);
        norm(`${p}/norm1`, widths[g]);
        conv(`${p}/conv2`, widths[g], widths[g]);
        norm(`${p}/norm2`, widths[g]);
        if (b === 0 && g > 0) {
          conv(`${p}/shortcut/layers_0`, inC, widths[g]);
          norm(`${p}/shortcut/layers_1`, widths[g]);
        }
      }
    }
    tensors.push({ name: 'params/dense/kernel', shape: [64, 10] }, { name: 'params/dense/bias', shape: [10] });
    const r = inferSpec(tensors);
    assert.equal(r.family, 'resnet-cifar');
    const a = r.spec.axes;
    const stem = a['params/conv1/kernel'][3];
    assert.ok(typeof stem === 'string');
    assert.deepEqual(a['params/norm1/scale'], [stem]);
    // Identity shortcuts carry the stream: block 1 of group 0 reads and writes the stem's permutation.
    assert.equal(a['params/blockgroups_0/blocks_1/conv1/kernel'][2], stem);
    assert.equal(a['params/blockgroups_0/blocks_1/conv2/kernel'][3], stem);
    // A conv shortcut maps the old stream to a new one, which the block's conv2 and norm2 write.
    const s1 = a['params/blockgroups_1/blocks_0/shortcut/layers_0/kernel'];
    assert.equal(s1[2], stem);
    assert.ok(typeof s1[3] === 'string' && s1[3] !== stem);
    assert.equal(a['params/blockgroups_1/blocks_0/conv2/kernel'][3], s1[3]);
    assert.deepEqual(a['params/blockgroups_1/blocks_0/shortcut/layers_1/scale'], [s1[3]]);
    assert.equal(a['params/blockgroups_1/blocks_0/conv1/kernel'][2], stem);
    // The head reads the last stream.
    assert.equal(a['params/dense/kernel'][0], a['params/blockgroups_2/blocks_1/conv2/kernel'][3]);
    assert.equal(a['params/dense/kernel'][1], null);
  });

  it('the PyTorch view of Flax weights: kernels transposed to [out, in] (the safetensors fixture\'s values) and HWIO to OIHW', async () => {
    const view = flaxTensorsAsTorch(await readAll(path.join(FORMATS, 'mlp.msgpack')));
    const torch = await readAll(path.join(FORMATS, 'mlp.safetensors'));
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(view.get(`Dense_${i}.weight`), torch.get(`layers.${i}.weight`));
      assert.deepEqual(view.get(`Dense_${i}.bias`), torch.get(`layers.${i}.bias`));
    }
    // HWIO [2, 1, 3, 4]: element (h, w, i, o) = 1000h + 100w + 10i + o; OIHW puts it at (o, i, h, w).
    const hwio = new Float32Array(24);
    for (let h = 0; h < 2; h++) for (let i = 0; i < 3; i++) for (let o = 0; o < 4; o++) hwio[(h * 3 + i) * 4 + o] = 1000 * h + 10 * i + o;
    const conv = flaxTensorsAsTorch(new Map([['Conv_0/kernel', { shape: [2, 1, 3, 4], data: hwio }]])).get('Conv_0.weight')!;
    assert.deepEqual(conv.shape, [4, 3, 2, 1]);
    for (let o = 0; o < 4; o++) for (let i = 0; i < 3; i++) for (let h = 0; h < 2; h++) assert.equal(conv.data[(o * 3 + i) * 2 + h], 1000 * h + 10 * i + o);
  });
});
