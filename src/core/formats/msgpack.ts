/**
 * A msgpack decoder (github.com/msgpack/msgpack spec) for checkpoint files, read through a small
 * window of positioned reads: maps, arrays, strings and numbers become values, while `bin` and
 * `ext` payloads are not read at all: they become `{offset, length}` pointers into the file (an
 * ext of type `arrayExtType` is decoded one level further by the caller's hook). So a Flax
 * checkpoint of any size is indexed with a bounded buffer, and its arrays are read when asked for.
 *
 * Why not @msgpack/msgpack: it decodes from a buffer holding the whole file and copies every bin
 * and ext payload into memory; here the weights must stay on disk until a tensor is read.
 */
import { readSync } from 'node:fs';
import { CheckpointFormatError } from './errors';

/** A bin or ext payload left on disk. */
export interface BlobRef {
  readonly kind: 'blob';
  /** Absolute file offset of the payload. */
  readonly offset: number;
  readonly length: number;
  /** The ext type, for ext payloads. */
  readonly extType?: number;
}

export type MsgValue = null | boolean | number | bigint | string | BlobRef | MsgValue[] | MsgMap | ExtValue;
export type MsgMap = Map<string, MsgValue>;
/** An ext payload decoded by the hook (e.g. Flax's ndarray). */
export interface ExtValue {
  readonly kind: 'ext';
  readonly value: unknown;
}

export const MSGPACK_LIMITS = {
  depth: 100,
  /** Longest string (keys, dtype names); weights are bins, never strings. */
  string: 1 << 20,
  /** Entries of one map or array, and entries in the whole file. */
  items: 1 << 24,
} as const;

const WINDOW = 1 << 16;

/** Positioned reads through a reused window (synchronous: the decoder is a plain recursive function). */
export class FileWindow {
  private buf = new Uint8Array(WINDOW);
  private bufStart = 0;
  private bufEnd = 0;
  pos = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly file: string,
  ) {}

  /** Makes `n` bytes at `pos` available; returns their index in `this.view`. */
  private fill(n: number): number {
    if (this.pos + n > this.size) throw new CheckpointFormatError('Corrupt', this.file, `msgpack ends at offset ${this.size} in the middle of a value (truncated?)`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufEnd) return this.pos - this.bufStart;
    if (n > this.buf.length) this.buf = new Uint8Array(n);
    const length = Math.min(this.buf.length, this.size - this.pos);
    let done = 0;
    while (done < length) {
      const r = readSync(this.fd, this.buf, done, length - done, this.pos + done);
      if (r === 0) throw new CheckpointFormatError('Corrupt', this.file, `file ended at offset ${this.pos + done} (changed since it was opened?)`);
      done += r;
    }
    this.bufStart = this.pos;
    this.bufEnd = this.pos + length;
    return 0;
  }

  bytes(n: number): Uint8Array {
    const at = this.fill(n);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  view(n: number): DataView {
    const b = this.bytes(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  skip(n: number): number {
    if (this.pos + n > this.size) throw new CheckpointFormatError('Corrupt', this.file, `msgpack payload of ${n} bytes at offset ${this.pos} runs past the end of the ${this.size}-byte file`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
}

/** Decodes an ext payload of the caller's type in place (the window is at its first byte). */
export type ExtHook = (window: FileWindow, length: number, decodeNested: () => MsgValue) => unknown;

const utf8 = new TextDecoder('utf-8');

/** Decodes one msgpack value from `window.pos`. */
export function decodeMsgpack(window: FileWindow, extType: number, hook: ExtHook): MsgValue {
  let items = 0;
  const corrupt = (detail: string): never => {
    throw new CheckpointFormatError('Corrupt', window.file, `msgpack: ${detail} (at offset ${window.pos})`);
  };
  const count = (n: number): number => {
    items += n;
    if (n > MSGPACK_LIMITS.items || items > MSGPACK_LIMITS.items) corrupt(`more than ${MSGPACK_LIMITS.items} entries`);
    // Each entry takes at least one byte: a count past the bytes left is a lie.
    if (n > window.size - window.pos) corrupt(`a container of ${n} entries cannot fit in the bytes left`);
    return n;
  };
  const str = (n: number): string => {
    if (n > MSGPACK_LIMITS.string) corrupt(`string of ${n} bytes is over the ${MSGPACK_LIMITS.string}-byte limit`);
    return utf8.decode(window.bytes(n));
  };
  const blob = (n: number, type?: number): BlobRef => ({ kind: 'blob', offset: window.skip(n), length: n, ...(type !== undefined ? { extType: type } : {}) });
  const ext = (n: number, depth: number): MsgValue => {
    const type = window.view(1).getInt8(0);
    if (type !== extType) return blob(n, type);
    const start = window.pos;
    const value = hook(window, n, () => value1(depth + 1));
    if (window.pos !== start + n) corrupt(`ext payload of type ${type} holds ${window.pos - start} bytes, declares ${n}`);
    return { kind: 'ext', value };
  };
  const map = (n: number, depth: number): MsgMap => {
    const out: MsgMap = new Map();
    const entries = count(n);
    for (let i = 0; i < entries; i++) {
      const k = value1(depth + 1);
      if (typeof k !== 'string' && typeof k !== 'number') corrupt('map key is not a string or an integer');
      out.set(String(k), value1(depth + 1));
    }
    return out;
  };
  const array = (n: number, depth: number): MsgValue[] => {
    const out: MsgValue[] = [];
    const entries = count(n);
    for (let i = 0; i < entries; i++) out.push(value1(depth + 1));
    return out;
  };
  const u64 = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v);

  function value1(depth: number): MsgValue {
    if (depth > MSGPACK_LIMITS.depth) corrupt(`values nested more than ${MSGPACK_LIMITS.depth} deep`);
    const b = window.bytes(1)[0];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f, depth);
    if ((b & 0xf0) === 0x90) return array(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return blob(window.view(1).getUint8(0));
      case 0xc5:
        return blob(window.view(2).getUint16(0));
      case 0xc6:
        return blob(window.view(4).getUint32(0));
      case 0xc7:
        return ext(window.view(1).getUint8(0), depth);
      case 0xc8:
        return ext(window.view(2).getUint16(0), depth);
      case 0xc9:
        return ext(window.view(4).getUint32(0), depth);
      case 0xca:
        return window.view(4).getFloat32(0);
      case 0xcb:
        return window.view(8).getFloat64(0);
      case 0xcc:
        return window.view(1).getUint8(0);
      case 0xcd:
        return window.view(2).getUint16(0);
      case 0xce:
        return window.view(4).getUint32(0);
      case 0xcf:
        return u64(window.view(8).getBigUint64(0));
      case 0xd0:
        return window.view(1).getInt8(0);
      case 0xd1:
        return window.view(2).getInt16(0);
      case 0xd2:
        return window.view(4).getInt32(0);
      case 0xd3:
        return u64(window.view(8).getBigInt64(0));
      case 0xd4:
        return ext(1, depth);
      case 0xd5:
        return ext(2, depth);
      case 0xd6:
        return ext(4, depth);
      case 0xd7:
        return ext(8, depth);
      case 0xd8:
        return ext(16, depth);
      case 0xd9:
        return str(window.view(1).getUint8(0));
      case 0xda:
        return str(window.view(2).getUint16(0));
      case 0xdb:
        return str(window.view(4).getUint32(0));
      case 0xdc:
        return array(window.view(2).getUint16(0), depth);
      case 0xdd:
        return array(window.view(4).getUint32(0), depth);
      case 0xde:
        return map(window.view(2).getUint16(0), depth);
      case 0xdf:
        return map(window.view(4).getUint32(0), depth);
      default:
        return corrupt(`byte 0x${b.toString(16)} does not start a value`);
    }
  }
  return value1(0);
}
