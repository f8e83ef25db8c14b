import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  SafetensorsError,
  checkpointSummary,
  decodeToFloat32,
  openCheckpoint,
  openSafetensors,
} from '../../../../src/core/safetensors';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors');
const NON_SHARDED = path.join(FIXTURES, 'fluxml', 'non_sharded');
const NUMPY_FILE = path.join(NON_SHARDED, 'model.numpy.safetensors');
const TORCH_FILE = path.join(NON_SHARDED, 'model.safetensors');
const META_FILE = path.join(NON_SHARDED, 'model.with_metadata.safetensors');
const SHARDED_INDEX = path.join(FIXTURES, 'fluxml', 'sharded', 'model.safetensors.index.json');

/** numpy / torch dtype names used in the fixture tensor names -> safetensors dtype. */
const DTYPE_OF: Record<string, string> = {
  bool: 'BOOL', uint8: 'U8', int8: 'I8', int16: 'I16', int32: 'I32', int64: 'I64',
  float16: 'F16', bfloat16: 'BF16', float32: 'F32', float64: 'F64',
  float8_e4m3fn: 'F8_E4M3', float8_e5m2: 'F8_E5M2',
};

/** `float16_357` -> { dtype: 'F16', shape: [3,5,7] } (the fixtures' naming scheme, see SOURCES.md). */
function expectedFromName(name: string): { dtype: string; shape: number[] } {
  const cut = name.lastIndexOf('_');
  const dtype = DTYPE_OF[name.slice(0, cut)];
  assert.ok(dtype, `fixture name ${name} has a known dtype`);
  return { dtype, shape: [...name.slice(cut + 1)].map(Number) };
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

async function rejection(p: Promise<unknown>): Promise<SafetensorsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('safetensors reader on files written by the reference library', () => {
  it('decodes every numpy-written tensor to arange(prod(shape)) (bool: arange % 2 == 1)', async () => {
    const ckpt = await openSafetensors(NUMPY_FILE);
    try {
      assert.equal(ckpt.format, 'safetensors');
      assert.equal(ckpt.tensors.length, 27);
      assert.deepEqual(ckpt.metadata, {});
      for (const t of ckpt.tensors) {
        const want = expectedFromName(t.name);
        assert.equal(t.dtype, want.dtype, t.name);
        assert.deepEqual(t.shape, want.shape, t.name);
        const values = await ckpt.readFloat32(t.name);
        const n = product(want.shape);
        assert.equal(values.length, n);
        const expected = Float32Array.from({ length: n }, (_, i) => (t.dtype === 'BOOL' ? i % 2 : i));
        assert.deepEqual(values, expected, t.name);
      }
    } finally {
      await ckpt.close();
    }
  });

  it('reads raw little-endian bytes at the header offsets (int64 and float64 checked bytewise)', async () => {
    const ckpt = await openSafetensors(NUMPY_FILE);
    try {
      const raw = await ckpt.readRaw('int64_35');
      assert.equal(raw.byteOffset % 8, 0);
      assert.deepEqual([...new BigInt64Array(raw.buffer, raw.byteOffset, 15)], Array.from({ length: 15 }, (_, i) => BigInt(i)));
      const f64 = await ckpt.readRaw('float64_3');
      assert.deepEqual([...new Float64Array(f64.buffer, f64.byteOffset, 3)], [0, 1, 2]);
      const info = ckpt.get('float64_3');
      assert.ok(info);
      assert.equal(info.byteLength, 24);
      assert.equal(info.dataOffsets[1] - info.dataOffsets[0], 24);
      assert.equal(info.file, path.resolve(NUMPY_FILE));
      // The bytes sit where the header says: 8 + header length + begin.
      const whole = await readFile(NUMPY_FILE);
      const n = Number(whole.readBigUInt64LE(0));
      assert.deepEqual(Buffer.from(f64), whole.subarray(8 + n + info.dataOffsets[0], 8 + n + info.dataOffsets[1]));
    } finally {
      await ckpt.close();
    }
  });

  it('opens the torch-written file: 36 tensors in 12 dtypes incl. bfloat16 and both float8s', async () => {
    const ckpt = await openSafetensors(TORCH_FILE);
    try {
      assert.equal(ckpt.tensors.length, 36);
      const names = ckpt.tensors.map((t) => t.name);
      assert.deepEqual(names, [...names].sort(), 'tensors sorted by name');
      const dtypes = new Set(ckpt.tensors.map((t) => t.dtype));
      assert.deepEqual([...dtypes].sort(), ['BF16', 'BOOL', 'F16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2', 'I16', 'I32', 'I64', 'I8', 'U8']);
      for (const t of ckpt.tensors) {
        const want = expectedFromName(t.name);
        assert.equal(t.dtype, want.dtype, t.name);
        assert.deepEqual(t.shape, want.shape, t.name);
        const raw = await ckpt.readRaw(t.name);
        const values = await ckpt.readFloat32(t.name);
        assert.equal(values.length, product(t.shape));
        assert.deepEqual(values, decodeToFloat32(t.dtype, raw), t.name);
        for (const v of values) {
          assert.ok(Number.isFinite(v), `${t.name} has finite values`);
          if (t.dtype === 'BOOL') assert.ok(v === 0 || v === 1);
          if (t.dtype.startsWith('I') || t.dtype.startsWith('U')) assert.ok(Number.isInteger(v));
          if (t.dtype === 'F8_E4M3') assert.ok(Math.abs(v) <= 448 && Number.isInteger(v * 512), `${v} is an e4m3fn value`);
          if (t.dtype === 'F8_E5M2') assert.ok(Number.isInteger(v * 65536), `${v} is an e5m2 value`);
        }
        if (t.dtype === 'F64') {
          const exact = new Float64Array(raw.buffer, raw.byteOffset, values.length);
          assert.deepEqual(values, Float32Array.from(exact, (x) => Math.fround(x)));
        }
      }
    } finally {
      await ckpt.close();
    }
  });

  it('reads __metadata__ and the same tensor bytes from the file with metadata', async () => {
    const plain = await openSafetensors(TORCH_FILE);
    const withMeta = await openSafetensors(META_FILE);
    try {
      assert.deepEqual(withMeta.metadata, { test: 'metadata', version: '2.2' });
      assert.deepEqual(withMeta.tensors.map((t) => t.name), plain.tensors.map((t) => t.name));
      for (const t of plain.tensors) assert.deepEqual(await withMeta.readRaw(t.name), await plain.readRaw(t.name), t.name);
    } finally {
      await plain.close();
      await withMeta.close();
    }
  });

  it('opens the sharded checkpoint through its index as one checkpoint equal to the single file', async () => {
    const sharded = await openCheckpoint(SHARDED_INDEX);
    const single = await openCheckpoint(TORCH_FILE);
    try {
      assert.equal(sharded.format, 'sharded');
      assert.equal(sharded.path, SHARDED_INDEX);
      assert.deepEqual(sharded.metadata, { format: 'pt' });
      assert.deepEqual(sharded.tensors.map((t) => t.name), single.tensors.map((t) => t.name));
      const index = JSON.parse(await readFile(SHARDED_INDEX, 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
      for (const t of sharded.tensors) {
        assert.equal(t.file, path.join(path.dirname(SHARDED_INDEX), index.weight_map[t.name]), t.name);
        assert.deepEqual(await sharded.readRaw(t.name), await single.readRaw(t.name), t.name);
        assert.deepEqual(await sharded.readFloat32(t.name), await single.readFloat32(t.name), t.name);
      }
      assert.equal(new Set(sharded.tensors.map((t) => t.file)).size, 6);
      assert.equal(checkpointSummary(sharded).totalBytes, index.metadata.total_size);
    } finally {
      await sharded.close();
      await single.close();
    }
  });

  it('reads the float64 file written by safetensors-cpp', async () => {
    const ckpt = await openCheckpoint(path.join(FIXTURES, 'syoyo', 'model.safetensors'));
    try {
      assert.deepEqual(ckpt.tensors.map((t) => [t.name, t.dtype, t.shape]), [
        ['weight1', 'F64', [8, 8]],
        ['weight2', 'F64', [16, 16]],
      ]);
      const w2 = await ckpt.readFloat32('weight2');
      assert.equal(w2.length, 256);
      assert.ok(w2.every((v) => v >= 0 && v < 1), 'uniform [0, 1) values');
    } finally {
      await ckpt.close();
    }
  });

  it('rejects the abuse file (header length past the end) with a clear one-line error', async () => {
    const file = path.join(FIXTURES, 'syoyo', 'safetensors_abuse_attempt_1.safetensors');
    const err = await rejection(openCheckpoint(file));
    assert.equal(err.kind, 'InvalidHeaderLength');
    assert.equal(err.file, file);
    assert.match(err.message, /^safetensors_abuse_attempt_1\.safetensors: header length \d+ runs past the end of the 88-byte file$/);
  });

  it('summarises a checkpoint from its header: names, dtypes, shapes, offsets, totals', async () => {
    const ckpt = await openCheckpoint(META_FILE);
    try {
      const s = checkpointSummary(ckpt);
      assert.equal(s.path, META_FILE);
      assert.equal(s.format, 'safetensors');
      assert.deepEqual(s.metadata, { test: 'metadata', version: '2.2' });
      assert.equal(s.tensors.length, 36);
      assert.equal(s.totalParams, 12 * (3 + 15 + 105));
      const bytesPerElement: Record<string, number> = { BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, F16: 2, BF16: 2, I32: 4, F32: 4, I64: 8, F64: 8 };
      const expectedBytes = s.tensors.reduce((sum, t) => sum + product(t.shape) * (bytesPerElement[t.dtype] ?? NaN), 0);
      assert.equal(s.totalBytes, expectedBytes);
      const first = s.tensors[0];
      assert.deepEqual(first.offsets, ckpt.get(first.name)?.dataOffsets);
      assert.doesNotThrow(() => JSON.stringify(s));
    } finally {
      await ckpt.close();
    }
  });

  it('names a missing tensor and refuses reads after close', async () => {
    const ckpt = await openSafetensors(NUMPY_FILE);
    const missing = await rejection(ckpt.readRaw('nope'));
    assert.equal(missing.kind, 'TensorNotFound');
    assert.equal(missing.tensor, 'nope');
    assert.match(missing.message, /tensor `nope` not found/);
    assert.equal(ckpt.get('nope'), undefined);
    await ckpt.close();
    await ckpt.close(); // idempotent
    const closed = await rejection(ckpt.readRaw('int8_3'));
    assert.equal(closed.kind, 'Io');
  });

  it('reports a missing file as an Io error naming it', async () => {
    const err = await rejection(openCheckpoint(path.join(FIXTURES, 'no-such.safetensors')));
    assert.equal(err.kind, 'Io');
    assert.match(err.message, /^no-such\.safetensors: cannot open file \(ENOENT\)/);
  });
});
