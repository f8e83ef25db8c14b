/**
 * A zip archive read through its central directory with positioned reads (PKWARE APPNOTE 6.3,
 * zip64 included): only the directory is held; members are read on demand, stored ones by offset
 * and range, deflated ones inflated no further than their declared size. Member names that climb
 * out of the archive (`../`, absolute paths), duplicates, encrypted members and sizes past the end
 * of the file are refused before any member is read.
 */
import type { FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { readFully } from '../safetensors/file-io';
import { CheckpointFormatError, quoted } from './errors';

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** The central directory of a state dict is a few hundred bytes per tensor. */
const MAX_DIRECTORY_BYTES = 256 * 1024 * 1024;
/** Deflate cannot do better than about 1032:1; a member claiming more is a bomb. */
const MAX_RATIO = 1032;

export interface ZipMember {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc: number;
  readonly localOffset: number;
}

export class ZipArchive {
  private readonly dataStarts = new Map<string, number>();

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly members: ReadonlyMap<string, ZipMember>,
  ) {}

  /** Reads the end record and the central directory (nothing else). */
  static async open(file: string, handle: FileHandle, fileSize: number): Promise<ZipArchive> {
    const corrupt = (detail: string): never => {
      throw new CheckpointFormatError('Corrupt', file, `zip archive: ${detail}`);
    };
    const tailLength = Math.min(fileSize, 22 + 65535);
    const tail = new Uint8Array(tailLength);
    await readFully(handle, tail, fileSize - tailLength, file);
    const tv = new DataView(tail.buffer);
    let eocd = -1;
    for (let p = tailLength - 22; p >= 0; p--) {
      if (tv.getUint32(p, true) === EOCD) {
        eocd = p;
        break;
      }
    }
    if (eocd < 0) return corrupt('no end of central directory record (truncated?)');
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      if (eocd < 20 || tv.getUint32(eocd - 20, true) !== EOCD64_LOCATOR) return corrupt('zip64 locator missing');
      const at = Number(tv.getBigUint64(eocd - 20 + 8, true));
      if (at + 56 > fileSize) return corrupt('zip64 end record is past the end of the file');
      const rec = new Uint8Array(56);
      await readFully(handle, rec, at, file);
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== EOCD64) return corrupt('zip64 end record missing');
      count = Number(rv.getBigUint64(32, true));
      cdSize = Number(rv.getBigUint64(40, true));
      cdOffset = Number(rv.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > fileSize) return corrupt(`central directory (${cdSize} bytes at ${cdOffset}) is past the end of the ${fileSize}-byte file`);
    if (cdSize > MAX_DIRECTORY_BYTES) throw new CheckpointFormatError('TooLarge', file, `zip archive: central directory of ${cdSize} bytes is over the ${MAX_DIRECTORY_BYTES}-byte limit`);
    if (count * 46 > cdSize) return corrupt(`${count} members cannot fit in a ${cdSize}-byte central directory`);
    const cd = new Uint8Array(cdSize);
    await readFully(handle, cd, cdOffset, file);
    const dv = new DataView(cd.buffer);
    const members = new Map<string, ZipMember>();
    const decoder = new TextDecoder('utf-8');
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || dv.getUint32(p, true) !== CENTRAL) return corrupt(`central directory entry ${i} is damaged`);
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc = dv.getUint32(p + 16, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let size = dv.getUint32(p + 24, true);
      const nameLength = dv.getUint16(p + 28, true);
      const extraLength = dv.getUint16(p + 30, true);
      const commentLength = dv.getUint16(p + 32, true);
      let localOffset = dv.getUint32(p + 42, true);
      if (p + 46 + nameLength + extraLength + commentLength > cdSize) return corrupt(`central directory entry ${i} is damaged`);
      const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLength));
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = dv.getUint16(e, true);
        const len = dv.getUint16(e + 2, true);
        if (id === 1) {
          // zip64: whichever of the three fields are 0xffffffff, in this order.
          let q = e + 4;
          const next = (): number => {
            if (q + 8 > e + 4 + len) return corrupt(`member ${quoted(name)} has a short zip64 field`);
            const v = Number(dv.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
        }
        e += 4 + len;
      }
      p = extraEnd + commentLength;
      if (name.split('/').includes('..') || name.startsWith('/') || name.includes('\\') || /^[a-zA-Z]:/.test(name)) {
        return corrupt(`member name ${quoted(name)} leaves the archive`);
      }
      if (members.has(name)) return corrupt(`member ${quoted(name)} appears twice`);
      if (flags & 1) throw new CheckpointFormatError('Unsupported', file, `zip member ${quoted(name)} is encrypted`);
      if (localOffset + 30 + compressedSize > fileSize) return corrupt(`member ${quoted(name)} (${compressedSize} bytes at ${localOffset}) is past the end of the ${fileSize}-byte file`);
      if (method === 0 && compressedSize !== size) return corrupt(`stored member ${quoted(name)} declares ${size} bytes but holds ${compressedSize}`);
      if (method === 8 && size > compressedSize * MAX_RATIO + 4096) {
        return corrupt(`member ${quoted(name)} declares ${size} bytes, more than its ${compressedSize} compressed bytes can hold (a decompression bomb?)`);
      }
      members.set(name, { name, method, compressedSize, size, crc, localOffset });
    }
    return new ZipArchive(file, handle, fileSize, members);
  }

  /** Absolute offset of a member's first data byte (from its local header). */
  async dataStart(member: ZipMember): Promise<number> {
    const known = this.dataStarts.get(member.name);
    if (known !== undefined) return known;
    const head = new Uint8Array(30);
    await readFully(this.handle, head, member.localOffset, this.file);
    const hv = new DataView(head.buffer);
    if (hv.getUint32(0, true) !== LOCAL) throw new CheckpointFormatError('Corrupt', this.file, `zip archive: member ${quoted(member.name)} has no local header`);
    const start = member.localOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (start + member.compressedSize > this.fileSize) {
      throw new CheckpointFormatError('Corrupt', this.file, `zip archive: member ${quoted(member.name)} is past the end of the file`);
    }
    this.dataStarts.set(member.name, start);
    return start;
  }

  /** A whole member, decompressed and checked against its CRC-32; at most `maxBytes`. */
  async read(member: ZipMember, maxBytes: number): Promise<Uint8Array> {
    if (member.size > maxBytes) {
      throw new CheckpointFormatError('TooLarge', this.file, `zip member ${quoted(member.name)} holds ${member.size} bytes, over the ${maxBytes}-byte limit`);
    }
    const raw = new Uint8Array(member.compressedSize);
    await readFully(this.handle, raw, await this.dataStart(member), this.file);
    let data: Uint8Array;
    if (member.method === 0) data = raw;
    else if (member.method === 8) {
      try {
        data = new Uint8Array(zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, member.size) }));
      } catch (cause) {
        const bomb = (cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        throw new CheckpointFormatError('Corrupt', this.file, `zip member ${quoted(member.name)} ${bomb ? `inflates past its declared ${member.size} bytes (a decompression bomb?)` : 'is damaged'}`, { cause });
      }
    } else throw new CheckpointFormatError('Unsupported', this.file, `zip member ${quoted(member.name)} uses compression method ${member.method} (only stored and deflated are read)`);
    if (data.length !== member.size) throw new CheckpointFormatError('Corrupt', this.file, `zip member ${quoted(member.name)} should hold ${member.size} bytes, holds ${data.length}`);
    if (typeof zlib.crc32 === 'function' && zlib.crc32(data) >>> 0 !== member.crc) {
      throw new CheckpointFormatError('Corrupt', this.file, `zip member ${quoted(member.name)} fails its crc-32 check`);
    }
    return data;
  }

  /** `length` bytes at `offset` inside a member (stored members only: read in place). */
  async readRange(member: ZipMember, offset: number, length: number, target: Uint8Array): Promise<void> {
    if (member.method !== 0) {
      const whole = await this.read(member, member.size);
      target.set(whole.subarray(offset, offset + length));
      return;
    }
    await readFully(this.handle, target.subarray(0, length), (await this.dataStart(member)) + offset, this.file);
  }
}
