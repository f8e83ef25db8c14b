import assert from 'node:assert/strict';
import { chmod, cp, link, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DTYPES,
  DTYPE_BITS,
  SafetensorsError,
  decodeToFloat32,
  encodeFromFloat32,
  openSafetensors,
  provenanceMetadata,
  writeSafetensors,
  type SafetensorsErrorKind,
  type TensorSource,
} from '../../../../src/core/safetensors';
import { tmpDirFor } from '../../helpers/tmp';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'fixtures', 'safetensors', 'fluxml');

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function source(name: string, dtype: string, shape: number[], bytes: Uint8Array): TensorSource {
  return { name, dtype, shape, byteLength: bytes.length, read: async () => bytes };
}

function isError(kind: SafetensorsErrorKind, message?: RegExp) {
  return (e: unknown): true => {
    assert.ok(e instanceof SafetensorsError, `not a SafetensorsError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** Opens `file`, decodes one tensor, closes the file. */
async function readBack(file: string, name: string): Promise<number[]> {
  const ckpt = await openSafetensors(file);
  try {
    return [...(await ckpt.readFloat32(name))];
  } finally {
    await ckpt.close();
  }
}

/** The header JSON text of a file, and its declared length. */
async function headerOf(file: string): Promise<{ n: number; text: string }> {
  const bytes = await readFile(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return { n, text: bytes.subarray(8, 8 + n).toString('utf8') };
}

describe('safetensors writer round trips', () => {
  it('writes every dtype and reads back the same bytes, shapes and metadata', async (t) => {
    const dir = await tmpDirFor(t);
    const shapes: number[][] = [[4], [2, 3, 4], [0, 7], [], [6, 2]];
    const sources: TensorSource[] = [];
    DTYPES.forEach((dtype, i) => {
      const shape = shapes[i % shapes.length];
      const elements = shape.reduce((a, b) => a * b, 1);
      const bytes = pseudoRandomBytes(Math.ceil((elements * DTYPE_BITS[dtype]) / 8), i + 1);
      // Sub-byte dtypes need a whole number of bytes: pick an even element count for them.
      const usable = (elements * DTYPE_BITS[dtype]) % 8 === 0 ? shape : [8];
      const sized = usable === shape ? bytes : pseudoRandomBytes((8 * DTYPE_BITS[dtype]) / 8, i + 1);
      sources.push(source(`t.${dtype.toLowerCase()}`, dtype, usable, sized));
    });
    const metadata = { format: 'pt', 'z-last': 'ünïcødé', a: '1' };
    const out = dir.file('all.safetensors');
    await writeSafetensors(out, sources, { metadata });
    const ckpt = await openSafetensors(out);
    try {
      assert.deepEqual(ckpt.metadata, metadata);
      assert.equal(ckpt.tensors.length, DTYPES.length);
      for (const s of sources) {
        const info = ckpt.get(s.name);
        assert.ok(info, s.name);
        assert.equal(info.dtype, s.dtype);
        assert.deepEqual(info.shape, s.shape);
        const raw = await ckpt.readRaw(s.name);
        assert.deepEqual(raw, await s.read(), s.name);
        // Data stays aligned to each dtype's element size inside the file.
        const bytesPerElement = Math.max(1, DTYPE_BITS[s.dtype] / 8);
        assert.equal((ckpt.dataStart + info.dataOffsets[0]) % bytesPerElement, 0, `${s.name} aligned`);
        if (['F16', 'BF16', 'F32', 'F64', 'I32', 'U8'].includes(s.dtype)) {
          assert.deepEqual(await ckpt.readFloat32(s.name), decodeToFloat32(s.dtype, raw));
        }
      }
    } finally {
      await ckpt.close();
    }
  });

  it('sorts header keys (__metadata__ first), keeps metadata order, pads the header with spaces to 8', async (t) => {
    const dir = await tmpDirFor(t);
    const names = ['zeta', 'Alpha', 'beta.weight', 'beta.bias', 'é', '𝛼', '\uffff', 'a"quote'];
    const out = dir.file('sorted.safetensors');
    await writeSafetensors(out, names.map((n, i) => source(n, 'F32', [1], encodeFromFloat32('F32', Float32Array.of(i)))), {
      metadata: { second: 'b', first: 'a' },
    });
    const { n, text } = await headerOf(out);
    assert.equal(n % 8, 0);
    assert.equal(text, text.trimEnd() + ' '.repeat(n - Buffer.byteLength(text.trimEnd())));
    const keys = Object.keys(JSON.parse(text) as object);
    // Code-point order (UTF-8 byte order), as Python's sorted() would give.
    const expected = ['__metadata__', ...[...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))];
    assert.deepEqual(keys, expected);
    assert.ok(text.startsWith('{"__metadata__":{"second":"b","first":"a"}'));
    for (const [i, name] of names.entries()) assert.deepEqual(await readBack(out, name), [i]);
  });

  it('produces the reference library\'s exact bytes for its own serialization examples', async (t) => {
    // Expected bytes from huggingface/safetensors tensor.rs tests (test_serialization, test_empty).
    const dir = await tmpDirFor(t);
    const out = dir.file('ref.safetensors');
    await writeSafetensors(out, [source('attn.0', 'F32', [1, 2, 3], encodeFromFloat32('F32', Float32Array.of(0, 1, 2, 3, 4, 5)))], {});
    const bytes = await readFile(out);
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(bytes.readBigUInt64LE(0), 64n);
    assert.equal(bytes.subarray(8, 72).toString(), header);
    assert.deepEqual([...bytes.subarray(72)], [...new Uint8Array(Float32Array.of(0, 1, 2, 3, 4, 5).buffer)]);

    await writeSafetensors(out, [], {});
    assert.deepEqual([...(await readFile(out))], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    await writeSafetensors(out, [], { metadata: { framework: 'pt' } });
    const withMeta = await readFile(out);
    assert.equal(withMeta.readBigUInt64LE(0), 40n);
    assert.equal(withMeta.subarray(8).toString(), '{"__metadata__":{"framework":"pt"}}     ');
  });

  it('keeps each tensor\'s dtype when writing merged float32 values back (F16, BF16, F64)', async (t) => {
    const dir = await tmpDirFor(t);
    const values = Float32Array.of(0.1, -2.5, 1000.125, 3e-5);
    const out = dir.file('merged.safetensors');
    await writeSafetensors(out, ['F16', 'BF16', 'F64', 'F32'].map((dtype) => source(`w.${dtype}`, dtype, [4], encodeFromFloat32(dtype, values))), {});
    const ckpt = await openSafetensors(out);
    try {
      const f16 = await ckpt.readFloat32('w.F16');
      const bf16 = await ckpt.readFloat32('w.BF16');
      assert.equal(ckpt.get('w.F16')?.dtype, 'F16');
      assert.equal(ckpt.get('w.F16')?.byteLength, 8);
      for (let i = 0; i < values.length; i++) {
        assert.ok(Math.abs(f16[i] - values[i]) <= Math.abs(values[i]) * 2 ** -11 + 2 ** -25);
        assert.ok(Math.abs(bf16[i] - values[i]) <= Math.abs(values[i]) * 2 ** -8);
      }
      assert.deepEqual(await ckpt.readFloat32('w.F64'), values);
      assert.deepEqual(await ckpt.readFloat32('w.F32'), values);
    } finally {
      await ckpt.close();
    }
  });

  it('random tensor sets (unicode names, any dtype, empty shapes) round trip byte for byte', async (t) => {
    const dir = await tmpDirFor(t);
    const out = dir.file('random.safetensors');
    const tensorArb = fc.record({
      name: fc.string({ unit: 'binary', maxLength: 8 }).filter((n) => n !== '__metadata__'),
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(tensorArb, { selector: (x) => x.name, maxLength: 6 }),
        fc.option(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }), { nil: undefined }),
        async (specs, metadata) => {
          const sources = specs.map((x) => {
            const shape = (x.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[x.dtype]) % 8 === 0 ? x.shape : [2, ...x.shape, 4];
            const bytes = pseudoRandomBytes((shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[x.dtype]) / 8, x.seed);
            return source(x.name, x.dtype, shape, bytes);
          });
          await writeSafetensors(out, sources, { metadata });
          const ckpt = await openSafetensors(out);
          try {
            assert.deepEqual(ckpt.metadata, { ...metadata });
            assert.equal(ckpt.tensors.length, sources.length);
            for (const src of sources) {
              assert.deepEqual(ckpt.get(src.name)?.shape, src.shape);
              assert.deepEqual(await ckpt.readRaw(src.name), await src.read());
            }
          } finally {
            await ckpt.close();
          }
          assert.equal((await headerOf(out)).n % 8, 0);
        },
      ),
      { seed: 7, numRuns: 60 },
    );
    assert.deepEqual(await readdir(dir.path), ['random.safetensors']);
  });

  it('provenanceMetadata keeps source metadata and adds rebasin.* keys', () => {
    const meta = provenanceMetadata({ format: 'pt', 'rebasin.tool': 'old' }, { tool: 'rebasin', version: '0.1.0', method: 'weight-matching', reference: 'a.safetensors', seed: 7, note: undefined });
    assert.deepEqual(meta, {
      format: 'pt',
      'rebasin.tool': 'rebasin',
      'rebasin.version': '0.1.0',
      'rebasin.method': 'weight-matching',
      'rebasin.reference': 'a.safetensors',
      'rebasin.seed': '7',
    });
  });

  it('refuses invalid tensor lists before creating any file', async (t) => {
    const dir = await tmpDirFor(t);
    const out = dir.file('bad.safetensors');
    const one = encodeFromFloat32('F32', Float32Array.of(1));
    await assert.rejects(writeSafetensors(out, [source('a', 'F32', [1], one), source('a', 'F32', [1], one)]), isError('DuplicateTensor', /tensor `a` is given twice/));
    await assert.rejects(writeSafetensors(out, [source('a', 'F99', [1], one)]), isError('UnknownDtype'));
    await assert.rejects(writeSafetensors(out, [source('a', 'F32', [-1], one)]), isError('InvalidShape'));
    await assert.rejects(writeSafetensors(out, [{ ...source('a', 'F32', [2], one), byteLength: 4 }]), isError('InvalidTensorInfo', /byteLength 4 does not match/));
    await assert.rejects(writeSafetensors(out, [source('__metadata__', 'F32', [1], one)]), isError('InvalidTensorInfo'));
    await assert.rejects(writeSafetensors(out, [], { metadata: { a: 1 as unknown as string } }), isError('InvalidMetadata'));
    assert.deepEqual(await readdir(dir.path), []);
  });
});

describe('safetensors writer safety', () => {
  async function inputFile(dir: string): Promise<{ file: string; bytes: Buffer }> {
    const file = path.join(dir, 'input.safetensors');
    await writeSafetensors(file, [source('w', 'F32', [2], encodeFromFloat32('F32', Float32Array.of(1, 2)))], {});
    return { file, bytes: await readFile(file) };
  }
  const tensors = [source('w', 'F32', [2], encodeFromFloat32('F32', Float32Array.of(3, 4)))];

  it('refuses to write over an input: same path, relative path, symlink, hard link', async (t) => {
    const dir = await tmpDirFor(t);
    const { file, bytes } = await inputFile(dir.path);
    const viaSymlink = dir.file('link.safetensors');
    await symlink(file, viaSymlink);
    const viaHardLink = dir.file('hard.safetensors');
    await link(file, viaHardLink);
    const relative = path.relative(process.cwd(), file);
    for (const out of [file, relative, viaSymlink, viaHardLink]) {
      await assert.rejects(writeSafetensors(out, tensors, { inputs: [file] }), isError('OutputIsInput', /refusing to write over an input/));
    }
    // The input given through a symlink is protected too.
    await assert.rejects(writeSafetensors(file, tensors, { inputs: [viaSymlink] }), isError('OutputIsInput'));
    assert.deepEqual(await readFile(file), bytes);
    assert.deepEqual((await readdir(dir.path)).sort(), ['hard.safetensors', 'input.safetensors', 'link.safetensors']);
  });

  it('refuses to write over a shard of a sharded input', async (t) => {
    const dir = await tmpDirFor(t);
    await cp(path.join(FIXTURES, 'sharded'), dir.path, { recursive: true });
    const index = dir.file('model.safetensors.index.json');
    const shard = dir.file('model-00003-of-00006.safetensors');
    const before = await readFile(shard);
    await assert.rejects(writeSafetensors(shard, tensors, { inputs: [index] }), isError('OutputIsInput', /model-00003-of-00006/));
    assert.deepEqual(await readFile(shard), before);
    // A fresh name beside the inputs is fine.
    await writeSafetensors(dir.file('aligned.safetensors'), tensors, { inputs: [index] });
    assert.deepEqual(await readBack(dir.file('aligned.safetensors'), 'w'), [3, 4]);
  });

  it('replaces an existing output that is not an input, and keeps it intact when a write fails', async (t) => {
    const dir = await tmpDirFor(t);
    const out = dir.file('out.safetensors');
    await writeFile(out, 'old contents');
    await assert.rejects(
      writeSafetensors(out, [{ name: 'w', dtype: 'F32', shape: [2], read: () => Promise.reject(new Error('disk on fire')) }]),
      isError('Io', /cannot read source of tensor `w`: disk on fire/),
    );
    assert.equal(await readFile(out, 'utf8'), 'old contents');
    assert.deepEqual(await readdir(dir.path), ['out.safetensors']);
    await writeSafetensors(out, tensors);
    assert.deepEqual(await readBack(out, 'w'), [3, 4]);
    assert.deepEqual(await readdir(dir.path), ['out.safetensors']);
  });

  it('leaves no file and no temp file when aborted mid-write', async (t) => {
    const dir = await tmpDirFor(t);
    const controller = new AbortController();
    let reads = 0;
    const many: TensorSource[] = Array.from({ length: 5 }, (_, i) => ({
      name: `t${i}`,
      dtype: 'F32',
      shape: [1024],
      read: async () => {
        reads++;
        if (reads === 3) controller.abort(); // cancel while the file is half written
        return new Uint8Array(4096);
      },
    }));
    await assert.rejects(writeSafetensors(dir.file('out.safetensors'), many, { signal: controller.signal }), isError('Aborted', /write cancelled/));
    assert.equal(reads, 3);
    assert.deepEqual(await readdir(dir.path), []);
    // Already aborted: nothing is even read.
    await assert.rejects(writeSafetensors(dir.file('out.safetensors'), many, { signal: AbortSignal.abort() }), isError('Aborted'));
    assert.equal(reads, 3);
  });

  it('leaves nothing when a source read fails or returns the wrong size', async (t) => {
    const dir = await tmpDirFor(t);
    const good = source('a', 'F32', [2], new Uint8Array(8));
    await assert.rejects(
      writeSafetensors(dir.file('x.safetensors'), [good, { name: 'b', dtype: 'F32', shape: [2], read: async () => { throw new Error('boom'); } }]),
      isError('Io', /tensor `b`: boom/),
    );
    await assert.rejects(
      writeSafetensors(dir.file('x.safetensors'), [good, { name: 'b', dtype: 'F32', shape: [2], read: async () => new Uint8Array(7) }]),
      isError('InvalidTensorInfo', /tensor `b` source gave 7 bytes, expected 8/),
    );
    assert.deepEqual(await readdir(dir.path), []);
  });

  it('gives a clear error and no partial file when the folder cannot be written', async (t) => {
    const dir = await tmpDirFor(t);
    // A folder that does not exist, and a "folder" that is a regular file: fail even as root.
    await assert.rejects(writeSafetensors(dir.file('missing/out.safetensors'), tensors), isError('Io', /cannot create a temporary file in folder .*missing \(ENOENT\)/));
    const regular = dir.file('regular');
    await writeFile(regular, 'x');
    await assert.rejects(writeSafetensors(path.join(regular, 'out.safetensors'), tensors), isError('Io', /\(ENOTDIR\)/));
    // A read-only folder only stops non-root users (root bypasses permission bits).
    const readOnly = dir.file('ro');
    await mkdir(readOnly);
    await chmod(readOnly, 0o555);
    const isRoot = process.getuid?.() === 0;
    if (!isRoot) {
      await assert.rejects(writeSafetensors(path.join(readOnly, 'out.safetensors'), tensors), isError('Io', /\(EACCES\)/));
    }
    assert.deepEqual(await readdir(readOnly), []);
    await chmod(readOnly, 0o755);
    assert.deepEqual((await readdir(dir.path)).sort(), ['regular', 'ro']);
    assert.equal((await stat(regular)).size, 1);
  });
});
