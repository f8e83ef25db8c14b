/**
 * PyTorch checkpoints read without running their pickle: the zip format (`<any folder>/data.pkl`
 * beside `<folder>/data/<key>` storages) and the legacy stream (`_use_new_zipfile_serialization=
 * False`: magic number, protocol, sys info, the pickle, the storage keys, then each storage as an
 * 8-byte element count and its raw bytes). Only the pickle is read at open; a tensor's bytes are
 * read from its storage when asked for, as a contiguous range or, for a strided view, the span it
 * covers, gathered in row-major order.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { readFully } from '../safetensors/file-io';
import { CheckpointFormatError, quoted } from './errors';
import { LazyCheckpoint } from './lazyCheckpoint';
import { PickleList, PickleTruncated, readPickle, type PickleValue } from './pickle';
import { findTensorDict } from './tensorDict';
import { ELEMENT_BYTES, StorageRef, TorchTensorRef, torchPickleHost } from './torchPickle';
import { ZipArchive } from './zipArchive';

/** The pickle of a state dict is about 100 bytes per tensor; anything near this is not one. */
export const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Where a storage's bytes are and how many there are on disk. */
interface StorageBytes {
  readonly bytes: number;
  /** Absolute file offset of the first byte when it can be read in place. */
  readonly start?: number;
  read(offset: number, target: Uint8Array): Promise<void>;
}

interface PlacedTensor {
  readonly info: TensorInfo;
  readonly ref: TorchTensorRef;
  readonly storage: StorageBytes;
}

function isTensor(v: PickleValue): v is TorchTensorRef {
  return v instanceof TorchTensorRef;
}

function product(dims: readonly number[], file: string, name: string): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new CheckpointFormatError('Corrupt', file, `tensor ${quoted(name)} has an element count past 2^53`);
  }
  return n;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Checks a tensor's view against its storage; returns its element count and the span of storage elements it reads. */
function checkView(ref: TorchTensorRef, storage: StorageBytes, file: string, name: string): { count: number; span: number } {
  const count = product(ref.shape, file, name);
  const elem = ELEMENT_BYTES[ref.dtype];
  if (elem === undefined) throw new CheckpointFormatError('Unsupported', file, `tensor ${quoted(name)} has dtype ${ref.dtype}, not read`);
  if (ELEMENT_BYTES[ref.storage.dtype] !== elem && ref.storage.dtype !== 'U8') {
    throw new CheckpointFormatError('Corrupt', file, `tensor ${quoted(name)} is ${ref.dtype} on a ${ref.storage.dtype} storage`);
  }
  let last = ref.offset;
  for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i] - 1) * ref.stride[i];
  const span = count === 0 ? 0 : last - ref.offset + 1;
  const need = count === 0 ? 0 : (last + 1) * elem;
  if (!Number.isSafeInteger(need) || need > storage.bytes) {
    throw new CheckpointFormatError('Corrupt', file, `tensor ${quoted(name)} reads past the end of its storage \`${ref.storage.key}\` (${storage.bytes} bytes)`);
  }
  return { count, span };
}

class TorchCheckpoint extends LazyCheckpoint {
  readonly format = 'pytorch' as const;
  private readonly placed: ReadonlyMap<string, PlacedTensor>;

  constructor(path: string, handle: FileHandle, placed: readonly PlacedTensor[], origin: string) {
    super(path, handle, placed.map((p) => p.info), origin);
    this.placed = new Map(placed.map((p) => [p.info.name, p]));
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const { info } = this.reading(name);
    const { ref, storage } = this.placed.get(name)!;
    const elem = ELEMENT_BYTES[ref.dtype];
    const out = new Uint8Array(info.byteLength);
    if (info.byteLength === 0) return out;
    if (isContiguous(ref.shape, ref.stride)) {
      await storage.read(ref.offset * elem, out);
      return out;
    }
    // A strided view: read the span it covers once, then gather element by element in row-major order.
    const { span } = checkView(ref, storage, this.path, name);
    const window = new Uint8Array(span * elem);
    await storage.read(ref.offset * elem, window);
    const rank = ref.shape.length;
    const index = new Array<number>(rank).fill(0);
    let src = 0;
    for (let o = 0; o < out.length; o += elem) {
      out.set(window.subarray(src * elem, src * elem + elem), o);
      for (let d = rank - 1; d >= 0; d--) {
        index[d]++;
        src += ref.stride[d];
        if (index[d] < ref.shape[d]) break;
        src -= ref.stride[d] * ref.shape[d];
        index[d] = 0;
      }
    }
    return out;
  }
}

/** Lays out the found tensors against their storages (every view checked before anything is read). */
function place(file: string, root: PickleValue, storageOf: (ref: StorageRef) => StorageBytes): { placed: PlacedTensor[]; where: string } {
  const found = findTensorDict(root, isTensor);
  if (!found) throw new CheckpointFormatError('Unsupported', file, 'holds no tensors (no state dict found in the pickle)');
  const placed: PlacedTensor[] = [];
  for (const [name, ref] of found.tensors) {
    const storage = storageOf(ref.storage);
    const { count, span } = checkView(ref, storage, file, name);
    const elem = ELEMENT_BYTES[ref.dtype];
    const begin = (storage.start ?? 0) + ref.offset * elem;
    const info: TensorInfo = {
      name,
      dtype: ref.dtype,
      shape: [...ref.shape],
      byteLength: count * elem,
      // Absolute offsets in the file (its "data section" is the whole file): the span the view covers.
      dataOffsets: [begin, begin + span * elem],
      file,
    };
    placed.push({ info, ref, storage });
  }
  return { placed, where: found.where };
}

/** The zip format: `<folder>/data.pkl` and `<folder>/data/<key>`, with any folder name. */
export async function openTorchZip(file: string, handle: FileHandle, fileSize: number): Promise<Checkpoint> {
  const zip = await ZipArchive.open(file, handle, fileSize);
  const pickles = [...zip.members.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new CheckpointFormatError('Unsupported', file, pickles.length === 0 ? 'zip archive has no `<folder>/data.pkl`: not a torch.save file' : 'zip archive holds more than one `data.pkl`');
  }
  const folder = pickles[0].slice(0, -'data.pkl'.length);
  const byteorder = zip.members.get(`${folder}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(await zip.read(byteorder, 16)).trim();
    if (order !== 'little') throw new CheckpointFormatError('Unsupported', file, `storages are ${quoted(order)}-endian; only little-endian is read`);
  }
  const pickle = await zip.read(zip.members.get(pickles[0])!, MAX_PICKLE_BYTES);
  const { value } = readPickle(pickle, torchPickleHost(file, 'pickle'), file, 0, 'pickle');
  // Stored members are read in place: their data starts come from their local headers (30 bytes each).
  const starts = new Map<string, number>();
  for (const member of zip.members.values()) {
    if (member.method === 0 && member.name.startsWith(`${folder}data/`)) starts.set(member.name, await zip.dataStart(member));
  }
  const storageOf = (ref: StorageRef): StorageBytes => {
    const member = zip.members.get(`${folder}data/${ref.key}`);
    if (!member) throw new CheckpointFormatError('Corrupt', file, `storage \`${ref.key}\` is named by the pickle but not in the archive`);
    const declared = ref.numel * ELEMENT_BYTES[ref.dtype];
    if (declared > member.size) throw new CheckpointFormatError('Corrupt', file, `storage \`${ref.key}\` declares ${declared} bytes but the archive holds ${member.size}`);
    const start = starts.get(member.name);
    return { bytes: declared, ...(start !== undefined ? { start } : {}), read: (offset, target) => zip.readRange(member, offset, target.length, target) };
  };
  const { placed, where } = place(file, value, storageOf);
  return new TorchCheckpoint(file, handle, placed, where);
}

/** Reads one pickle at `start` through a window that grows (up to the limit) until it holds the whole pickle. */
async function pickleAt(handle: FileHandle, file: string, fileSize: number, start: number, what: string, storages?: Map<string, StorageRef>): Promise<{ value: PickleValue; end: number }> {
  for (let window = 1 << 16; ; window *= 4) {
    const length = Math.min(window, fileSize - start, MAX_PICKLE_BYTES);
    const bytes = new Uint8Array(Math.max(0, length));
    if (length > 0) await readFully(handle, bytes, start, file);
    try {
      const r = readPickle(bytes, torchPickleHost(file, what, storages), file, 0, what);
      return { value: r.value, end: start + r.end };
    } catch (e) {
      if (!(e instanceof PickleTruncated) || length >= fileSize - start) throw e;
      if (length >= MAX_PICKLE_BYTES) throw new CheckpointFormatError('TooLarge', file, `${what} is over the ${MAX_PICKLE_BYTES}-byte limit`);
    }
  }
}

/** The legacy stream (torch before 1.6, or `_use_new_zipfile_serialization=False`). */
export async function openTorchLegacy(file: string, handle: FileHandle, fileSize: number): Promise<Checkpoint> {
  const magic = await pickleAt(handle, file, fileSize, 0, 'magic number');
  if (magic.value !== LEGACY_MAGIC) throw new CheckpointFormatError('Unsupported', file, 'a pickle, but not one torch.save wrote (no magic number): not read');
  const protocol = await pickleAt(handle, file, fileSize, magic.end, 'protocol version');
  if (protocol.value !== 1001) throw new CheckpointFormatError('Unsupported', file, `legacy torch.save protocol ${String(protocol.value)} is not read (only 1001)`);
  const sysInfo = await pickleAt(handle, file, fileSize, protocol.end, 'system info');
  const refs = new Map<string, StorageRef>();
  const main = await pickleAt(handle, file, fileSize, sysInfo.end, 'pickle', refs);
  const keys = await pickleAt(handle, file, fileSize, main.end, 'storage keys');
  if (!(keys.value instanceof PickleList) || !keys.value.items.every((k): k is string => typeof k === 'string')) {
    throw new CheckpointFormatError('Corrupt', file, 'storage key list is not a list of strings');
  }
  // The pickle names each storage with its dtype; the storages follow in key-list order.
  const located = new Map<string, { start: number; bytes: number }>();
  let at = keys.end;
  const count = new Uint8Array(8);
  for (const key of keys.value.items as string[]) {
    if (at + 8 > fileSize) throw new CheckpointFormatError('Corrupt', file, `storage \`${key}\` starts past the end of the ${fileSize}-byte file (truncated?)`);
    await readFully(handle, count, at, file);
    const n = new DataView(count.buffer).getBigUint64(0, true);
    const ref = refs.get(key);
    if (!ref) throw new CheckpointFormatError('Corrupt', file, `storage \`${key}\` is listed but never named by the pickle`);
    const elem = ELEMENT_BYTES[ref.dtype];
    const bytes = Number(n) * elem;
    if (n > BigInt(fileSize) || at + 8 + bytes > fileSize) {
      throw new CheckpointFormatError('Corrupt', file, `storage \`${key}\` declares ${n} elements, more than the ${fileSize}-byte file holds`);
    }
    if (Number(n) < ref.numel) throw new CheckpointFormatError('Corrupt', file, `storage \`${key}\` holds ${n} elements but the pickle says ${ref.numel}`);
    located.set(key, { start: at + 8, bytes });
    at += 8 + bytes;
  }
  const storageOf = (ref: StorageRef): StorageBytes => {
    const where = located.get(ref.key);
    if (!where) throw new CheckpointFormatError('Corrupt', file, `storage \`${ref.key}\` is named by the pickle but not stored after it`);
    return { bytes: where.bytes, start: where.start, read: (offset, target) => readFully(handle, target, where.start + offset, file) };
  };
  const { placed, where } = place(file, main.value, storageOf);
  return new TorchCheckpoint(file, handle, placed, where);
}
