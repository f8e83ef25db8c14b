/**
 * Writers of PyTorch and Flax checkpoint bytes for tests, without Python: pickle opcodes as
 * `torch.save` emits them (protocol 2), a zip archive (stored or deflated members, names as given,
 * sizes as claimed), the legacy stream, and msgpack with Flax's ext type 1 arrays. They write what
 * they are told, so hostile files are as easy to make as good ones.
 */
import * as zlib from 'node:zlib';
import { zipBytes } from './zipBytes';

/** Pickle opcodes, appended in order. */
export class PickleBuilder {
  private readonly parts: number[] = [];

  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  mark(): this {
    return this.op(0x28);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.op(0x58, ...n, ...b);
  }
  int(v: number): this {
    if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 31) {
      // LONG1: little-endian two's complement (non-negative here: 8 bytes, high bit clear).
      const n = Buffer.alloc(8);
      n.writeBigInt64LE(BigInt(v));
      return this.op(0x8a, 8, ...n);
    }
    const n = Buffer.alloc(4);
    n.writeInt32LE(v);
    return this.op(0x4a, ...n);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'utf8'));
  }
  tupleOf(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.op(0x74);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  reduce(): this {
    return this.op(0x52);
  }
  setitems(): this {
    return this.op(0x75);
  }
  stop(): this {
    return this.op(0x2e);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface TensorSpec {
  readonly name: string;
  readonly key: string;
  /** e.g. FloatStorage, BFloat16Storage. */
  readonly storage: string;
  /** Elements of the storage (as the persistent id declares it). */
  readonly numel: number;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** The opcodes of `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` for one tensor. */
export function tensorOps(p: PickleBuilder, t: TensorSpec): PickleBuilder {
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', t.storage).str(t.key).str('cpu').int(t.numel).op(0x74).op(0x51);
  p.int(t.offset).tupleOf(t.shape).tupleOf(t.stride).op(0x89).global('collections', 'OrderedDict').op(0x29).reduce();
  return p.op(0x74).reduce();
}

/** A whole state-dict pickle (optionally nested as `{wrapper: {...}}`). */
export function stateDictPickle(tensors: readonly TensorSpec[], wrapper?: string): Uint8Array {
  const p = new PickleBuilder().proto().emptyDict();
  if (wrapper) p.str(wrapper).emptyDict();
  p.mark();
  for (const t of tensors) tensorOps(p.str(t.name), t);
  p.setitems();
  if (wrapper) p.op(0x73);
  return p.stop().bytes();
}

export interface ZipEntry {
  readonly name: string;
  readonly data: Uint8Array;
  readonly deflate?: boolean;
  /** Uncompressed size to claim (defaults to the truth). */
  readonly claimedSize?: number;
}

/** A zip archive of the entries in order (the hostile suite's writer, with CRCs). */
export function zipArchive(entries: readonly ZipEntry[]): Uint8Array {
  return new Uint8Array(
    zipBytes(entries.map((e) => ({ name: e.name, stored: e.deflate ? zlib.deflateRawSync(e.data) : e.data, method: e.deflate ? 8 : 0, size: e.claimedSize ?? e.data.length, crc: zlib.crc32(e.data) >>> 0 }))),
  );
}

/** A `torch.save` zip: `<folder>/data.pkl`, `<folder>/data/<key>`, byteorder and version. */
export function torchZip(folder: string, pickle: Uint8Array, storages: ReadonlyMap<string, Uint8Array>): Uint8Array {
  return zipArchive([
    { name: `${folder}/data.pkl`, data: pickle },
    { name: `${folder}/byteorder`, data: Buffer.from('little') },
    ...[...storages].map(([k, data]) => ({ name: `${folder}/data/${k}`, data })),
    { name: `${folder}/version`, data: Buffer.from('3\n') },
  ]);
}

/**
 * The legacy stream: magic number, protocol 1001, sys info, the pickle, the storage keys, then
 * each storage as an int64 element count and its bytes (`counts` overrides the declared counts).
 */
export function legacyTorch(pickle: Uint8Array, storages: ReadonlyMap<string, { bytes: Uint8Array; elementBytes: number }>, counts?: ReadonlyMap<string, bigint>): Uint8Array {
  const magic = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
  const protocol = new PickleBuilder().proto().op(0x4d, 0xe9, 0x03).stop().bytes();
  const sysInfo = new PickleBuilder().proto().emptyDict().stop().bytes();
  const keys = new PickleBuilder().proto().op(0x5d).mark();
  for (const k of storages.keys()) keys.str(k);
  const parts: Uint8Array[] = [magic, protocol, sysInfo, pickle, keys.op(0x65).stop().bytes()];
  for (const [k, s] of storages) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(counts?.get(k) ?? BigInt(s.bytes.length / s.elementBytes));
    parts.push(n, s.bytes);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** An ext value for the msgpack writer. */
export class Ext {
  constructor(
    readonly type: number,
    readonly payload: Uint8Array,
  ) {}
}

export type MsgIn = null | boolean | number | string | Uint8Array | Ext | MsgIn[] | { readonly [k: string]: MsgIn };

function header(small: number, b8: number | undefined, b16: number, b32: number, n: number, smallMax: number): Buffer {
  if (n <= smallMax) return Buffer.from([small | n]);
  if (b8 !== undefined && n < 0x100) return Buffer.from([b8, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = b16;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = b32;
  b.writeUInt32BE(n, 1);
  return b;
}

/** msgpack bytes of a value (integers as int32/uint32, other numbers as float64). */
export function msgpack(v: MsgIn): Buffer {
  if (v === null) return Buffer.from([0xc0]);
  if (v === true || v === false) return Buffer.from([v ? 0xc3 : 0xc2]);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 128) return Buffer.from([v]);
    if (Number.isInteger(v) && Math.abs(v) < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0xd2;
      b.writeInt32BE(v, 1);
      return b;
    }
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    return Buffer.concat([header(0xa0, 0xd9, 0xda, 0xdb, s.length, 31), s]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([header(0, 0xc4, 0xc5, 0xc6, v.length, -1), v]);
  if (v instanceof Ext) {
    const n = v.payload.length;
    const h = n < 0x100 ? Buffer.from([0xc7, n]) : n < 0x10000 ? Buffer.from([0xc8, n >> 8, n & 0xff]) : Buffer.from([0xc9, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
    return Buffer.concat([h, Buffer.from([v.type]), v.payload]);
  }
  if (Array.isArray(v)) return Buffer.concat([header(0x90, undefined, 0xdc, 0xdd, v.length, 15), ...v.map(msgpack)]);
  const entries = Object.entries(v as { readonly [k: string]: MsgIn });
  return Buffer.concat([header(0x80, undefined, 0xde, 0xdf, entries.length, 15), ...entries.flatMap(([k, x]) => [msgpack(k), msgpack(x)])]);
}

/** A Flax array leaf: ext type 1 holding (shape, dtype name, C-order bytes). */
export function flaxArray(shape: readonly number[], dtype: string, bytes: Uint8Array): Ext {
  return new Ext(1, msgpack([[...shape], dtype, bytes]));
}
