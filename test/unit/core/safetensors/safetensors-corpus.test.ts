import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  SafetensorsError,
  openSafetensors,
  parseSafetensorsBytes,
  type SafetensorsErrorKind,
} from '../../../../src/core/safetensors';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

/** A raw file: 8-byte LE length (the header's, unless overridden), header bytes, then `data` bytes. */
function rawFile(header: string | Uint8Array, data: number | Uint8Array = 0, length?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const entry = (dtype: unknown, shape: unknown, offsets: unknown): string => JSON.stringify({ dtype, shape, data_offsets: offsets });
/** a: F32[2] at [0,8), b: I8[3] at [8,11): 11 data bytes. */
const A = entry('F32', [2], [0, 8]);
const B = entry('I8', [3], [8, 11]);
const VALID = `{"a":${A},"b":${B}}`;

interface Case {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly kind: SafetensorsErrorKind;
  /** Part of the message that names the rule. */
  readonly message?: RegExp;
  readonly tensor?: string;
}

const enc = (s: string): number[] => [...new TextEncoder().encode(s)];

const CASES: readonly Case[] = [
  { name: 'empty file', bytes: new Uint8Array(0), kind: 'HeaderTooSmall', message: /0 bytes, shorter than the 8-byte header length/ },
  { name: 'under 8 bytes', bytes: Uint8Array.of(1, 0, 0), kind: 'HeaderTooSmall' },
  { name: 'header length past the end', bytes: rawFile('{}', 0, 1000n), kind: 'InvalidHeaderLength', message: /header length 1000 runs past the end of the 10-byte file/ },
  { name: 'header length over 100 MB', bytes: rawFile('{}', 0, 100_000_001n), kind: 'HeaderTooLarge', message: /over the 100000000-byte limit/ },
  { name: 'header length 2^64-1', bytes: rawFile('{}', 0, 2n ** 64n - 1n), kind: 'HeaderTooLarge' },
  { name: 'not JSON', bytes: rawFile('{"a": nope}'), kind: 'InvalidJson', message: /header is not valid json/ },
  { name: 'empty header', bytes: rawFile(''), kind: 'InvalidJson' },
  { name: 'JSON array, not an object', bytes: rawFile('[1,2]'), kind: 'NotAnObject', message: /header json is an array, not an object/ },
  { name: 'JSON null', bytes: rawFile('null'), kind: 'NotAnObject' },
  { name: 'JSON number', bytes: rawFile('42'), kind: 'NotAnObject' },
  { name: 'bad UTF-8 (lone 0xff)', bytes: rawFile(Uint8Array.from([...enc('{"'), 0xff, ...enc('":1}')])), kind: 'InvalidUtf8', message: /header is not valid utf-8/ },
  { name: 'bad UTF-8 (encoded surrogate)', bytes: rawFile(Uint8Array.from([...enc('{"'), 0xed, 0xa0, 0x80, ...enc('":1}')])), kind: 'InvalidUtf8' },
  { name: 'bad UTF-8 (overlong slash)', bytes: rawFile(Uint8Array.from([...enc('{"'), 0xc0, 0xaf, ...enc('":1}')])), kind: 'InvalidUtf8' },
  { name: 'truncated data', bytes: rawFile(VALID, 10), kind: 'MetadataIncompleteBuffer', message: /tensors need 11 data bytes but the file holds 10/ },
  { name: 'trailing bytes', bytes: rawFile(VALID, 12), kind: 'TrailingBytes', message: /1 bytes follow the last tensor's data/ },
  { name: 'data but no tensors', bytes: rawFile('{}', 4), kind: 'TrailingBytes' },
  { name: 'overlapping offsets', bytes: rawFile(`{"a":${A},"b":${entry('I8', [3], [4, 7])}}`, 8), kind: 'InvalidOffset', message: /tensor `b` offsets overlap the previous tensor/, tensor: 'b' },
  { name: 'two tensors at the same offsets', bytes: rawFile(`{"a":${A},"b":${entry('F32', [2], [0, 8])}}`, 8), kind: 'InvalidOffset', message: /overlap/ },
  { name: 'gapped offsets', bytes: rawFile(`{"a":${A},"b":${entry('I8', [3], [9, 12])}}`, 12), kind: 'InvalidOffset', message: /tensor `b` offsets leave a gap of 1 bytes/, tensor: 'b' },
  { name: 'data not starting at 0', bytes: rawFile(`{"a":${entry('F32', [2], [4, 12])}}`, 12), kind: 'InvalidOffset', message: /gap of 4 bytes/ },
  { name: 'reversed offsets', bytes: rawFile(`{"a":${A},"b":${entry('I8', [3], [11, 8])}}`, 11), kind: 'InvalidOffset', message: /tensor `b` offsets \[11, 8\] are reversed/ },
  { name: 'size not matching shape x dtype', bytes: rawFile(`{"a":${entry('F32', [3], [0, 8])}}`, 8), kind: 'InvalidTensorInfo', message: /tensor `a` offsets span 8 bytes but F32\[3\] needs 12/, tensor: 'a' },
  { name: 'overflowing shape', bytes: rawFile(`{"a":${entry('F32', [2 ** 40, 2 ** 40], [0, 8])}}`, 8), kind: 'ValidationOverflow', message: /element count overflows/ },
  { name: 'shape x dtype overflowing', bytes: rawFile(`{"a":${entry('F64', [2 ** 51], [0, 8])}}`, 8), kind: 'ValidationOverflow', message: /byte size overflows/ },
  { name: 'dimension beyond safe integers', bytes: rawFile(`{"a":{"dtype":"U8","shape":[1e300],"data_offsets":[0,1]}}`, 1), kind: 'ValidationOverflow' },
  { name: 'offset beyond safe integers', bytes: rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551615]}}`, 1), kind: 'ValidationOverflow' },
  { name: 'unknown dtype', bytes: rawFile(`{"a":${entry('F128', [2], [0, 8])}}`, 8), kind: 'UnknownDtype', message: /tensor `a` has unknown dtype `F128`/ },
  { name: 'lowercase dtype', bytes: rawFile(`{"a":${entry('f32', [2], [0, 8])}}`, 8), kind: 'UnknownDtype' },
  { name: 'dtype not a string', bytes: rawFile(`{"a":${entry(32, [2], [0, 8])}}`, 8), kind: 'InvalidTensorInfo' },
  { name: 'negative dimension', bytes: rawFile(`{"a":${entry('F32', [-2], [0, 8])}}`, 8), kind: 'InvalidShape', message: /dimension 0 is -2, not a non-negative integer/ },
  { name: 'fractional dimension', bytes: rawFile(`{"a":${entry('F32', [1.5], [0, 8])}}`, 8), kind: 'InvalidShape' },
  // serde's u64 (the reference library's shape and offsets) takes JSON integers only; JSON.parse reads 1.0 as 1.
  { name: 'dimension written 1.0', bytes: rawFile('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', 4), kind: 'InvalidShape', tensor: 'a', message: /tensor `a` shape has the number 1\.0, not a non-negative integer/ },
  { name: 'dimension written 2e0', bytes: rawFile('{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', 8), kind: 'InvalidShape', message: /has the number 2e0/ },
  { name: 'dimension written -0', bytes: rawFile('{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}', 0), kind: 'InvalidShape', message: /has the number -0/ },
  { name: 'offset written 4.0', bytes: rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', 4), kind: 'InvalidOffset', message: /tensor `a` data_offsets has the number 4\.0/ },
  { name: 'string dimension', bytes: rawFile(`{"a":${entry('F32', ['2'], [0, 8])}}`, 8), kind: 'InvalidShape' },
  { name: 'shape not an array', bytes: rawFile(`{"a":${entry('F32', 2, [0, 8])}}`, 8), kind: 'InvalidShape' },
  { name: 'missing dtype', bytes: rawFile('{"a":{"shape":[2],"data_offsets":[0,8]}}', 8), kind: 'InvalidTensorInfo', message: /tensor `a` entry has no `dtype`/ },
  { name: 'missing shape', bytes: rawFile('{"a":{"dtype":"F32","data_offsets":[0,8]}}', 8), kind: 'InvalidTensorInfo', message: /no `shape`/ },
  { name: 'missing data_offsets', bytes: rawFile('{"a":{"dtype":"F32","shape":[2]}}', 8), kind: 'InvalidTensorInfo', message: /no `data_offsets`/ },
  { name: 'entry not an object', bytes: rawFile('{"a":[1,2,3]}'), kind: 'InvalidTensorInfo', message: /tensor `a` entry is an array/ },
  { name: 'offsets not a pair', bytes: rawFile(`{"a":${entry('F32', [2], [0, 4, 8])}}`, 8), kind: 'InvalidOffset' },
  { name: 'negative offset', bytes: rawFile(`{"a":${entry('F32', [2], [-8, 0])}}`, 8), kind: 'InvalidOffset' },
  { name: 'fractional offset', bytes: rawFile(`{"a":${entry('U8', [1], [0, 1.5])}}`, 1), kind: 'InvalidOffset' },
  { name: 'F4 with an odd element count', bytes: rawFile(`{"a":${entry('F4', [3], [0, 2])}}`, 2), kind: 'MisalignedSize' },
  { name: 'non-string metadata value', bytes: rawFile('{"__metadata__":{"version":2}}'), kind: 'InvalidMetadata', message: /__metadata__ value of `version` is a number, not a string/ },
  { name: 'metadata not an object', bytes: rawFile('{"__metadata__":"hello"}'), kind: 'InvalidMetadata' },
  { name: 'metadata an array', bytes: rawFile('{"__metadata__":["a"]}'), kind: 'InvalidMetadata' },
  { name: 'duplicate tensor keys', bytes: rawFile(`{"a":${A},"a":${A}}`, 8), kind: 'DuplicateKey', message: /key `a` appears twice in the header/, tensor: 'a' },
  { name: 'duplicate key spelled with an escape', bytes: rawFile(`{"a":${A},"\\u0061":${A}}`, 8), kind: 'DuplicateKey' },
  { name: 'duplicate field inside an entry', bytes: rawFile('{"a":{"dtype":"F32","dtype":"I8","shape":[2],"data_offsets":[0,8]}}', 8), kind: 'DuplicateKey', message: /key `dtype` appears twice in `a`/ },
  { name: 'duplicate metadata key', bytes: rawFile('{"__metadata__":{"k":"1","k":"2"}}'), kind: 'DuplicateKey' },
];

describe('malformed safetensors corpus: one named error per broken rule', () => {
  let dir: TmpDir;
  before(async () => {
    dir = await makeTmpDir('rebasin-corpus-');
  });
  after(() => dir.remove());

  for (const c of CASES) {
    it(`${c.name} -> ${c.kind}`, async () => {
      const file = dir.file(`${c.name.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
      await writeFile(file, c.bytes);
      const check = (e: unknown): true => {
        assert.ok(e instanceof SafetensorsError, `not a SafetensorsError: ${String(e)}`);
        assert.equal(e.kind, c.kind, e.message);
        assert.ok(!e.message.includes('\n'), 'message is one line');
        if (c.message) assert.match(e.message, c.message);
        if (c.tensor !== undefined) assert.equal(e.tensor, c.tensor);
        return true;
      };
      await assert.rejects(openSafetensors(file), (e: unknown) => {
        check(e);
        assert.ok((e as SafetensorsError).message.startsWith(`${file.split('/').pop()}: `), 'message names the file');
        assert.equal((e as SafetensorsError).file, file);
        return true;
      });
      assert.throws(() => parseSafetensorsBytes(c.bytes, file), check);
    });
  }

  it('accepts the valid base file and legal edge cases', async () => {
    const accepted: Array<[string, Uint8Array, number]> = [
      ['base', rawFile(VALID, 11), 2],
      ['keys in any order', rawFile(`{"b":${B},"__metadata__":{"x":"y"},"a":${A}}`, 11), 2],
      ['empty header', rawFile('{}'), 0],
      ['padded header', rawFile(`${VALID}     `, 11), 2],
      ['null metadata', rawFile('{"__metadata__":null}'), 0],
      ['zero-size tensors', rawFile(`{"z":${entry('F32', [0, 5], [0, 0])},"y":${entry('I8', [], [0, 1])},"x":${entry('U8', [0], [1, 1])}}`, 1), 3],
      ['F4 with an even count and F6 sized in bits', rawFile(`{"f4":${entry('F4', [4], [0, 2])},"f6":${entry('F6_E2M3', [4], [2, 5])}}`, 5), 2],
      ['unknown extra fields ignored', rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"note":"x"}}', 1), 1],
      ['a tensor named __proto__', rawFile(`{"__proto__":${entry('U8', [1], [0, 1])}}`, 1), 1],
    ];
    for (const [label, bytes, count] of accepted) {
      const parsed = parseSafetensorsBytes(bytes, `${label}.safetensors`);
      assert.equal(parsed.tensors.length, count, label);
      const file = dir.file(`ok-${label.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
      await writeFile(file, bytes);
      const ckpt = await openSafetensors(file);
      assert.deepEqual(ckpt.tensors.map((t) => ({ ...t, file: '' })), parsed.tensors.map((t) => ({ ...t, file: '' })), label);
      assert.ok(ckpt.tensors.every((t) => t.file === file));
      for (const t of ckpt.tensors) assert.equal((await ckpt.readRaw(t.name)).length, t.byteLength);
      await ckpt.close();
    }
    const scalar = parseSafetensorsBytes(rawFile(`{"y":${entry('I8', [], [0, 1])}}`, 1));
    assert.deepEqual(scalar.tensors[0].shape, []);
    assert.equal(scalar.tensors[0].byteLength, 1);
  });
});
