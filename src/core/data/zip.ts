/**
 * Just enough of the ZIP format (PKWARE APPNOTE 6.3) to read `.npz` archives: the end of
 * central directory record (and its zip64 twin, which numpy's savez may write), the central
 * directory, and stored (0) or deflated (8) entries, checked against their CRC-32.
 * The directory is read first and an entry is inflated only when asked for, so a caller can
 * check the arrays' headers against each other before inflating any of them.
 */
import * as zlib from 'node:zlib';
import { DataError } from './errors';
import { declaredSize, inflateCapped } from './inflate';
import { readNpyHeader, type NpyHeader } from './npy';

/** One entry of the central directory; `raw` is its stored (possibly compressed) bytes. */
export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly crc: number;
  /** Uncompressed size the directory declares. */
  readonly size: number;
  readonly raw: Uint8Array;
}

/** An entry may not declare more than this (Node's Buffer limit). */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** The entries of a zip archive, by name, none of them decompressed. */
export function listZipEntries(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The EOCD record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 65535); p--) {
    if (dv.getUint32(p, true) === EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new DataError('BadMagic', `${file}: not a zip archive (no end of central directory record)`, file);
  let count = dv.getUint16(eocd + 10, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && dv.getUint32(eocd - 20, true) === EOCD64_LOCATOR) {
    const rec = Number(dv.getBigUint64(eocd - 20 + 8, true));
    if (rec + 56 > bytes.length || dv.getUint32(rec, true) !== EOCD64) throw new DataError('Corrupt', `${file}: zip64 end of central directory record missing`, file);
    count = Number(dv.getBigUint64(rec + 32, true));
    cdOffset = Number(dv.getBigUint64(rec + 48, true));
  }
  const out = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== CENTRAL) throw new DataError('Corrupt', `${file}: zip central directory entry ${i} is damaged`, file);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information (header id 1) holds, in order, whichever of the three fields are 0xffffffff.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(dv.getBigUint64(q, true))), (q += 8);
        if (compSize === 0xffffffff) (compSize = Number(dv.getBigUint64(q, true))), (q += 8);
        if (localOffset === 0xffffffff) localOffset = Number(dv.getBigUint64(q, true));
      }
      e += 4 + len;
    }
    p = extraEnd + commentLen;
    if (localOffset + 30 > bytes.length || dv.getUint32(localOffset, true) !== LOCAL) throw new DataError('Corrupt', `${file}: zip entry \`${name}\` has no local header`, file);
    const dataStart = localOffset + 30 + dv.getUint16(localOffset + 26, true) + dv.getUint16(localOffset + 28, true);
    if (dataStart + compSize > bytes.length) throw new DataError('Corrupt', `${file}: zip entry \`${name}\` is truncated`, file);
    if (method !== 0 && method !== 8) throw new DataError('Unsupported', `${file}: zip entry \`${name}\` uses compression method ${method} (only stored and deflated are read)`, file);
    out.set(name, { name, method, crc, size, raw: bytes.subarray(dataStart, dataStart + compSize) });
  }
  return out;
}

/**
 * The npy header of an `.npy` entry, inflating only a prefix of it; undefined when the entry is
 * too short to hold one. A deflated entry declaring more than its compressed bytes can hold is refused.
 */
export function entryNpyHeader(entry: ZipEntry, file: string): NpyHeader | undefined {
  const label = `${file}:${entry.name.replace(/\.npy$/i, '')}`;
  if (entry.method === 0) return readNpyHeader(entry.raw, label);
  let header: NpyHeader | undefined;
  declaredSize('deflate-raw', entry.raw, (head) => (header = readNpyHeader(head, label))?.need, MAX_ENTRY_BYTES, file, `zip entry \`${entry.name}\``);
  return header;
}

/**
 * An entry's content, inflated into a buffer of the size its npy header declares (or the
 * directory's), refused beyond it, then checked against the directory's size and CRC-32.
 */
export async function readZipEntry(entry: ZipEntry, file: string): Promise<Uint8Array> {
  const { name, size } = entry;
  let data: Uint8Array;
  if (entry.method === 0) data = entry.raw;
  else {
    const label = `zip entry \`${name}\``;
    // An .npy entry inflates no further than its own header declares; others no further than the directory says.
    const declared = /\.npy$/i.test(name) ? entryNpyHeader(entry, file)?.need : size;
    data = await inflateCapped('deflate-raw', entry.raw, Math.min(declared ?? size, MAX_ENTRY_BYTES), file, label);
  }
  if (data.length !== size) throw new DataError('Corrupt', `${file}: zip entry \`${name}\` should hold ${size} bytes, holds ${data.length}`, file);
  if (typeof zlib.crc32 === 'function' && zlib.crc32(data) >>> 0 !== entry.crc) throw new DataError('Corrupt', `${file}: zip entry \`${name}\` fails its crc-32 check`, file);
  return data;
}
