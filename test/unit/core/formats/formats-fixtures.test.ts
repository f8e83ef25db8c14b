/**
 * PyTorch and Flax checkpoints read without running them: every fixture in
 * test/fixtures/formats (written by torch and flax, see SOURCES.md) gives the same tensors as
 * `mlp.safetensors`, bit for bit; the format is told by content, not name; strided views,
 * offsets into shared storages and sharded `pytorch_model.bin` read correctly; `mlp_evil.pt` is
 * refused with one line naming the global and nothing runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Checkpoint } from '../../../../src/core/checkpoint';
import { CheckpointFormatError, detectFileFormat, detectFormat, openCheckpoint } from '../../../../src/core/formats';
import { weightsPath } from '../../../../src/core/hf/layout';
import { encodeFromFloat32 } from '../../../../src/core/safetensors';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { PickleBuilder, legacyTorch, stateDictPickle, tensorOps, torchZip, type TensorSpec } from '../../helpers/torchFiles';

const FORMATS = path.join(__dirname, '..', '..', '..', 'fixtures', 'formats');
const fixture = (name: string): string => path.join(FORMATS, name);

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-formats-');
});
after(() => tmp.remove());

async function withCheckpoint<T>(file: string, use: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await openCheckpoint(file);
  try {
    return await use(c);
  } finally {
    await c.close();
  }
}

async function rawTensors(file: string): Promise<Map<string, { dtype: string; shape: readonly number[]; bytes: Buffer }>> {
  return withCheckpoint(file, async (c) => {
    const out = new Map<string, { dtype: string; shape: readonly number[]; bytes: Buffer }>();
    for (const t of c.tensors) out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: Buffer.from(await c.readRaw(t.name)) });
    return out;
  });
}

/** Transposes a row-major [r, c] float32 matrix's bytes. */
function transposed(bytes: Buffer, r: number, c: number): Buffer {
  const src = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const dst = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) dst[j * r + i] = src[i * c + j];
  return Buffer.from(dst.buffer);
}

describe('PyTorch fixtures', () => {
  for (const [file, format, origin] of [
    ['mlp.pt', 'pytorch', 'the top level'],
    ['mlp_legacy.pt', 'pytorch', 'the top level'],
    ['mlp_lightning.ckpt', 'pytorch', '`state_dict`, prefix `model.` removed'],
  ] as const) {
    it(`${file}: the same tensors as mlp.safetensors, bit for bit (weights at ${origin})`, async () => {
      const want = await rawTensors(fixture('mlp.safetensors'));
      const got = await rawTensors(fixture(file));
      assert.deepEqual([...got.keys()], [...want.keys()]);
      for (const [name, t] of want) {
        const g = got.get(name)!;
        assert.equal(g.dtype, t.dtype, name);
        assert.deepEqual(g.shape, t.shape, name);
        assert.ok(g.bytes.equals(t.bytes), `${name} differs`);
      }
      await withCheckpoint(fixture(file), async (c) => {
        assert.equal(c.format, format);
        assert.equal(c.origin, origin);
      });
    });
  }

  it('mlp_bf16.pt: BF16 tensors equal mlp.safetensors rounded to BF16 (nearest even), bit for bit', async () => {
    const want = await rawTensors(fixture('mlp.safetensors'));
    const got = await rawTensors(fixture('mlp_bf16.pt'));
    for (const [name, t] of want) {
      const g = got.get(name)!;
      assert.equal(g.dtype, 'BF16');
      const f32 = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.length));
      assert.ok(Buffer.from(encodeFromFloat32('BF16', f32)).equals(g.bytes), `${name} differs`);
    }
  });

  it('gpt2-tiny-pytorch_model.bin: the same tensors as the Hugging Face model.safetensors, bit for bit', async () => {
    const want = await rawTensors(path.join(hfFixture('gpt2-tiny'), 'model.safetensors'));
    const got = await rawTensors(fixture('gpt2-tiny-pytorch_model.bin'));
    for (const [name, t] of want) assert.ok(got.get(name)?.bytes.equals(t.bytes), `${name} differs or is missing`);
  });

  it('the format is told by content: a .pt named .safetensors, a zip with another folder name', async () => {
    const renamed = tmp.file('looks-like.safetensors');
    await copyFile(fixture('mlp.pt'), renamed);
    assert.equal(await detectFileFormat(renamed), 'pytorch-zip');
    assert.equal(await detectFileFormat(fixture('mlp_legacy.pt')), 'pytorch-legacy');
    assert.equal(await detectFileFormat(fixture('flax-ckpt/checkpoint_100')), 'flax');
    assert.equal(await detectFileFormat(fixture('mlp.safetensors')), 'safetensors');
    const want = await rawTensors(fixture('mlp.safetensors'));
    const got = await rawTensors(renamed);
    for (const [name, t] of want) assert.ok(got.get(name)!.bytes.equals(t.bytes));
  });

  it('detection: a safetensors length prefix that looks like a pickle or msgpack start is still safetensors', () => {
    const st = (len: number): Uint8Array => {
      const b = Buffer.alloc(16, 0x20);
      b.writeBigUInt64LE(BigInt(len));
      b[8] = 0x7b;
      return b;
    };
    assert.equal(detectFormat(st(0x280)), 'safetensors'); // 80 02 ...: a pickle's PROTO 2
    assert.equal(detectFormat(st(0xa081)), 'safetensors'); // 81 a0 ...: a msgpack map with a string key
    assert.equal(detectFormat(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a])), 'pytorch-legacy');
    assert.equal(detectFormat(Uint8Array.from([0x81, 0xa6])), 'flax');
    assert.equal(detectFormat(Uint8Array.from([0x50, 0x4b, 0x03, 0x04])), 'pytorch-zip');
  });

  it('the zip64 end record torch writes is followed when the classic one says 0xffff / 0xffffffff (files over 4 GiB)', async () => {
    const bytes = Buffer.from(await readFile(fixture('mlp.pt')));
    const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    bytes.writeUInt16LE(0xffff, eocd + 8);
    bytes.writeUInt16LE(0xffff, eocd + 10);
    bytes.writeUInt32LE(0xffffffff, eocd + 16);
    const file = tmp.file('zip64.pt');
    await writeFile(file, bytes);
    const want = await rawTensors(fixture('mlp.safetensors'));
    const got = await rawTensors(file);
    for (const [name, t] of want) assert.ok(got.get(name)!.bytes.equals(t.bytes), name);
  });

  it('mlp_evil.pt is refused in one line naming the global, and nothing runs', async () => {
    const marker = '/tmp/REBASIN_PWNED';
    const existed = existsSync(marker);
    await assert.rejects(openCheckpoint(fixture('mlp_evil.pt')), (e: unknown) => {
      assert.ok(e instanceof CheckpointFormatError);
      assert.equal(e.kind, 'Unsafe');
      assert.match(e.message, /^mlp_evil\.pt: refused: .*`posix\.system`/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    if (!existed) assert.ok(!existsSync(marker), `${marker} was created`);
  });
});

describe('Flax fixtures', () => {
  for (const file of ['mlp.msgpack', 'flax-ckpt/checkpoint_100']) {
    it(`${file}: params found (opt_state ignored), kernels are the safetensors weights transposed, bit for bit`, async () => {
      const want = await rawTensors(fixture('mlp.safetensors'));
      const got = await rawTensors(fixture(file));
      assert.deepEqual([...got.keys()].sort(), ['Dense_0/bias', 'Dense_0/kernel', 'Dense_1/bias', 'Dense_1/kernel', 'Dense_2/bias', 'Dense_2/kernel']);
      for (let i = 0; i < 3; i++) {
        const w = want.get(`layers.${i}.weight`)!;
        const k = got.get(`Dense_${i}/kernel`)!;
        assert.deepEqual(k.shape, [w.shape[1], w.shape[0]]);
        assert.ok(k.bytes.equals(transposed(w.bytes, w.shape[0], w.shape[1])), `Dense_${i}/kernel`);
        assert.ok(got.get(`Dense_${i}/bias`)!.bytes.equals(want.get(`layers.${i}.bias`)!.bytes), `Dense_${i}/bias`);
      }
      await withCheckpoint(fixture(file), async (c) => {
        assert.equal(c.format, 'flax');
        assert.equal(c.origin, '`params` > `params`');
      });
    });
  }
});

describe('files written here: views, v3, parameters, long pickles, shards', () => {
  it('strided and offset views sharing one storage read as row-major copies', async () => {
    // One storage of 24 floats 0..23; a [4, 6] view, its transpose [6, 4] (stride [1, 6]), a column
    // [4] at offset 2 (stride 6) and a [2, 3] block at offset 7 (stride [6, 1]).
    const storage = Float32Array.from({ length: 24 }, (_, i) => i);
    const base = { key: '0', storage: 'FloatStorage', numel: 24 };
    const tensors: TensorSpec[] = [
      { ...base, name: 'full', offset: 0, shape: [4, 6], stride: [6, 1] },
      { ...base, name: 'transposed', offset: 0, shape: [6, 4], stride: [1, 6] },
      { ...base, name: 'column', offset: 2, shape: [4], stride: [6] },
      { ...base, name: 'block', offset: 7, shape: [2, 3], stride: [6, 1] },
    ];
    const file = tmp.file('views.pt');
    await writeFile(file, torchZip('any_name', stateDictPickle(tensors), new Map([['0', new Uint8Array(storage.buffer)]])));
    const got = await withCheckpoint(file, async (c) => {
      const out: Record<string, number[]> = {};
      for (const t of c.tensors) out[t.name] = [...(await c.readFloat32(t.name))];
      return out;
    });
    assert.deepEqual(got.full, [...storage]);
    assert.deepEqual(got.transposed, Array.from({ length: 24 }, (_, k) => (k % 4) * 6 + Math.floor(k / 4)));
    assert.deepEqual(got.column, [2, 8, 14, 20]);
    assert.deepEqual(got.block, [7, 8, 9, 13, 14, 15]);
  });

  it('_rebuild_tensor_v3 on an UntypedStorage with a dtype, and _rebuild_parameter around a tensor', async () => {
    const p = new PickleBuilder().proto().emptyDict().mark();
    // v3(storage, offset, size, stride, requires_grad, hooks, dtype): 3 uint16 values at element offset 1 of 8 bytes.
    p.str('counts').global('torch._utils', '_rebuild_tensor_v3').mark();
    p.mark().str('storage').global('torch', 'UntypedStorage').str('0').str('cpu').int(8).op(0x74).op(0x51);
    p.int(1).tupleOf([3]).tupleOf([1]).op(0x89).global('collections', 'OrderedDict').op(0x29).reduce().global('torch', 'uint16').op(0x74).reduce();
    // Parameter(tensor) over storage 1.
    p.str('weight').global('torch._utils', '_rebuild_parameter').mark();
    tensorOps(p, { name: '', key: '1', storage: 'FloatStorage', numel: 2, offset: 0, shape: [2], stride: [1] });
    p.op(0x88).global('collections', 'OrderedDict').op(0x29).reduce().op(0x74).reduce();
    const pickle = p.setitems().stop().bytes();
    const file = tmp.file('v3.pt');
    await writeFile(file, torchZip('v3', pickle, new Map([['0', new Uint8Array(Uint16Array.from([9, 10, 11, 12]).buffer)], ['1', new Uint8Array(Float32Array.from([0.5, -2]).buffer)]])));
    await withCheckpoint(file, async (c) => {
      assert.equal(c.get('counts')?.dtype, 'U16');
      assert.deepEqual([...new Uint16Array((await c.readRaw('counts')).buffer)], [10, 11, 12]);
      assert.deepEqual([...(await c.readFloat32('weight'))], [0.5, -2]);
    });
  });

  it('a legacy file whose pickle is longer than the first read window (3,000 tensors on one BF16 storage)', async () => {
    const storage = new Uint8Array(Uint16Array.from({ length: 3000 }, (_, i) => 0x3f80 + (i % 100)).buffer);
    const tensors: TensorSpec[] = Array.from({ length: 3000 }, (_, i) => ({ name: `block.${i}.scale`, key: 'k', storage: 'BFloat16Storage', numel: 3000, offset: i, shape: [1], stride: [1] }));
    const pickle = stateDictPickle(tensors, 'model_state_dict');
    assert.ok(pickle.length > 1 << 16);
    const file = tmp.file('legacy-long.pt');
    await writeFile(file, legacyTorch(pickle, new Map([['k', { bytes: storage, elementBytes: 2 }]])));
    await withCheckpoint(file, async (c) => {
      assert.equal(c.tensors.length, 3000);
      assert.equal(c.origin, '`model_state_dict`');
      assert.deepEqual([...(await c.readRaw('block.2999.scale'))], [...storage.subarray(2 * 2999, 2 * 3000)]);
      assert.equal(c.get('block.7.scale')?.dtype, 'BF16');
    });
  });

  it('sharded pytorch_model-0000i-of-0000n.bin through pytorch_model.bin.index.json, and a folder holding it', async () => {
    const dir = tmp.file('sharded');
    await mkdir(dir);
    const one = (name: string, values: number[]): Uint8Array =>
      torchZip('archive', stateDictPickle([{ name, key: '0', storage: 'FloatStorage', numel: values.length, offset: 0, shape: [values.length], stride: [1] }]), new Map([['0', new Uint8Array(Float32Array.from(values).buffer)]]));
    await writeFile(path.join(dir, 'pytorch_model-00001-of-00002.bin'), one('a.weight', [1, 2, 3]));
    await writeFile(path.join(dir, 'pytorch_model-00002-of-00002.bin'), one('b.weight', [4, 5]));
    await writeFile(path.join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: { 'a.weight': 'pytorch_model-00001-of-00002.bin', 'b.weight': 'pytorch_model-00002-of-00002.bin' } }));
    for (const p of [path.join(dir, 'pytorch_model.bin.index.json'), weightsPath(dir)]) {
      await withCheckpoint(p, async (c) => {
        assert.equal(c.format, 'sharded');
        assert.deepEqual([...(await c.readFloat32('a.weight'))], [1, 2, 3]);
        assert.deepEqual([...(await c.readFloat32('b.weight'))], [4, 5]);
      });
    }
  });
});
