/**
 * Token-id arrays [N, T] (N sequences of T tokens) from `.npy`, `.npz` (entry `input_ids`) and
 * `.safetensors` (tensor `input_ids`), in any integer dtype. Only the rows asked for are read:
 * `.npy` and `.safetensors` with positioned reads from the header's offsets, `.npz` (whose
 * entries may be compressed) whole, after an fstat size check.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { openSafetensors } from '../safetensors';
import { DataError } from './errors';
import { formatBytes } from '../../../shared/bytes';
import { entryNpyHeader, listZipEntries, readZipEntry } from './zip';

/** Largest token file read whole (`.npz`); `.npy` / `.safetensors` read only the rows needed. */
export const MAX_TOKEN_ARCHIVE_BYTES = 1024 * 1024 * 1024;
/** Most token ids held at once (256 MiB as int32): more needs a limit on the number of sequences. */
export const MAX_TOKENS = 64 * 1024 * 1024;

export interface TokenArray {
  readonly ids: Int32Array;
  /** Sequences read (at most the limit). */
  readonly n: number;
  readonly t: number;
  /** Sequences in the file. */
  readonly total: number;
}

/** An integer element type: bytes per id, signedness, byte order. */
interface IntType {
  readonly bytes: 1 | 2 | 4 | 8;
  readonly signed: boolean;
  readonly little: boolean;
  readonly name: string;
}

const SAFETENSORS_INTS: Readonly<Record<string, Omit<IntType, 'name' | 'little'>>> = {
  I8: { bytes: 1, signed: true }, U8: { bytes: 1, signed: false },
  I16: { bytes: 2, signed: true }, U16: { bytes: 2, signed: false },
  I32: { bytes: 4, signed: true }, U32: { bytes: 4, signed: false },
  I64: { bytes: 8, signed: true }, U64: { bytes: 8, signed: false },
};

/** Where bytes come from: a file read by position, or bytes in memory. */
interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

function memorySource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (o, l) => bytes.subarray(o, o + l) };
}

async function fileSource(handle: FileHandle, file: string): Promise<ByteSource> {
  const st = await handle.stat();
  if (!st.isFile()) throw new DataError('Unsupported', `${file}: token data is not a regular file`, file);
  if (st.size === 0) throw new DataError('Corrupt', `${file}: token data is empty (0 bytes)`, file);
  return {
    size: st.size,
    read: async (offset, length) => {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new DataError('Corrupt', `${file}: token data ends early (${offset + done} of ${offset + length} bytes)`, file);
        done += bytesRead;
      }
      return buf;
    },
  };
}

/** Where the rows go and what else the read holds (`heldBytes`: an archive read whole), against `budget`. */
interface RowPlan {
  readonly limit?: number;
  readonly budget?: number;
  readonly heldBytes?: number;
}

/** The bytes a read of `n` rows of `t` ids holds (int32 ids, one slice of the file, `held`). */
function rowBytes(n: number, t: number, type: IntType, held: number): number {
  return n * t * 4 + Math.min(n * t * type.bytes, SLICE_BYTES) + held;
}

/** Refuses, before any row is read, more ids than are read at once or more bytes than the budget. */
function checkRows(total: number, t: number, type: IntType, plan: RowPlan, file: string): number {
  const n = plan.limit !== undefined && plan.limit > 0 ? Math.min(plan.limit, total) : total;
  if (n * t > MAX_TOKENS) {
    throw new DataError('Unsupported', `${file}: ${n} sequences of ${t} tokens is more than the ${MAX_TOKENS} token ids read at once: give a limit of at most ${Math.floor(MAX_TOKENS / t)} sequences`, file);
  }
  const bytes = rowBytes(n, t, type, plan.heldBytes ?? 0);
  if (plan.budget !== undefined && bytes > plan.budget) {
    throw new DataError('OverBudget', `${file}: reading ${n} sequences of ${t} tokens needs ${formatBytes(bytes)}, over the memory budget of ${formatBytes(plan.budget)}: give a limit on the number of sequences or a larger --memory-budget`, file);
  }
  return n;
}

/** Files are read in slices of about this many bytes so a large file never needs a second copy of itself. */
const SLICE_BYTES = 8 * 1024 * 1024;

/** Rows [0, n) of [total, t] ids of `type` starting at `start`, converted to int32 with range checks. */
async function readRows(src: ByteSource, start: number, type: IntType, total: number, t: number, plan: RowPlan, file: string): Promise<TokenArray> {
  const n = checkRows(total, t, type, plan, file);
  const ids = new Int32Array(n * t);
  const perSlice = Math.max(1, Math.floor(SLICE_BYTES / type.bytes));
  for (let first = 0; first < n * t; first += perSlice) {
    const count = Math.min(perSlice, n * t - first);
    const bytes = await src.read(start + first * type.bytes, count * type.bytes);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) {
      let v: number;
      switch (type.bytes) {
        case 1:
          v = type.signed ? dv.getInt8(i) : dv.getUint8(i);
          break;
        case 2:
          v = type.signed ? dv.getInt16(2 * i, type.little) : dv.getUint16(2 * i, type.little);
          break;
        case 4:
          v = type.signed ? dv.getInt32(4 * i, type.little) : dv.getUint32(4 * i, type.little);
          break;
        case 8:
          v = Number(type.signed ? dv.getBigInt64(8 * i, type.little) : dv.getBigUint64(8 * i, type.little));
          break;
      }
      if (v < 0 || v > 0x7fffffff) {
        const k = first + i;
        throw new DataError('LabelOutOfRange', `${file}: token id ${v} at sequence ${Math.floor(k / t)}, position ${k % t} is not a valid id`, file);
      }
      ids[first + i] = v;
    }
  }
  return { ids, n, t, total };
}

function checkShape(shape: readonly number[], file: string, what: string): [number, number] {
  if (shape.length !== 2) throw new DataError('BadShape', `${file}: ${what} must be a 2-d array [sequences, tokens], got [${shape.join(', ')}]`, file);
  if (shape[0] === 0 || shape[1] === 0) throw new DataError('BadShape', `${file}: ${what} is empty ([${shape.join(', ')}])`, file);
  return [shape[0], shape[1]];
}

// ---------------------------------------------------------------- .npy

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
/** An npy header (magic, version, length, dict) longer than this is not one numpy writes. */
const MAX_NPY_HEADER = 1024 * 1024;

/** Token ids of an npy array from `src` (a file or an npz entry). */
async function npyTokens(src: ByteSource, file: string, plan: RowPlan): Promise<TokenArray> {
  const head = await src.read(0, Math.min(src.size, 12));
  if (head.length < 10 || NPY_MAGIC.some((m, i) => head[i] !== m)) throw new DataError('BadMagic', `${file}: not an npy file (missing \\x93NUMPY magic)`, file);
  const major = head[6];
  const hv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) [headerLen, headerStart] = [hv.getUint16(8, true), 10];
  else if ((major === 2 || major === 3) && head.length >= 12) [headerLen, headerStart] = [hv.getUint32(8, true), 12];
  else throw new DataError('Unsupported', `${file}: npy format version ${major} is not supported`, file);
  const dataStart = headerStart + headerLen;
  if (headerLen > MAX_NPY_HEADER || dataStart > src.size) throw new DataError('Corrupt', `${file}: npy header truncated or too long (${headerLen} bytes)`, file);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(await src.read(headerStart, headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new DataError('BadShape', `${file}: npy header lacks descr, fortran_order or shape`, file);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new DataError('BadShape', `${file}: npy shape (${shapeText}) is not a tuple of sizes`, file);
  const m = /^([<>|=])([iu])([1248])$/.exec(descr);
  if (!m) throw new DataError('Unsupported', `${file}: token ids must be integers, the npy array holds '${descr}'`, file);
  const [n, t] = checkShape(shape, file, 'token ids');
  // A 2-d array saved Fortran-ordered is its transpose in memory: rows would not be sequences.
  if (fortran === 'True' && t > 1) throw new DataError('Unsupported', `${file}: fortran-ordered npy arrays are not supported (save with np.ascontiguousarray)`, file);
  const type: IntType = { bytes: Number(m[3]) as IntType['bytes'], signed: m[2] === 'i', little: m[1] !== '>', name: descr };
  if (src.size - dataStart !== n * t * type.bytes) {
    throw new DataError('Corrupt', `${file}: npy data holds ${src.size - dataStart} bytes, shape [${n}, ${t}] of '${descr}' needs ${n * t * type.bytes}`, file);
  }
  return readRows(src, dataStart, type, n, t, plan, file);
}

export async function readNpyTokens(file: string, limit?: number, budget?: number): Promise<TokenArray> {
  const handle = await openForReading(file);
  try {
    return await npyTokens(await fileSource(handle, file), file, { limit, budget });
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------- .npz

export async function readNpzTokens(file: string, limit?: number, budget?: number): Promise<TokenArray> {
  const handle = await openForReading(file);
  let bytes: Uint8Array;
  try {
    const src = await fileSource(handle, file);
    if (src.size > MAX_TOKEN_ARCHIVE_BYTES) {
      throw new DataError('Unsupported', `${file}: ${src.size} bytes is over the ${MAX_TOKEN_ARCHIVE_BYTES}-byte limit for .npz token data: save the ids as .npy or .safetensors (read row by row)`, file);
    }
    if (budget !== undefined && src.size > budget) {
      throw new DataError('OverBudget', `${file}: reading the ${formatBytes(src.size)} archive is over the memory budget of ${formatBytes(budget)}: save the ids as .npy or .safetensors (read row by row)`, file);
    }
    bytes = await src.read(0, src.size);
  } finally {
    await handle.close();
  }
  const entries = listZipEntries(bytes, file);
  const key = entries.has('input_ids.npy') ? 'input_ids.npy' : entries.size === 1 ? [...entries.keys()][0] : undefined;
  if (!key) throw new DataError('NotFound', `${file}: needs an array \`input_ids\`; has ${[...entries.keys()].map((k) => k.replace(/\.npy$/, '')).join(', ') || 'none'}`, file);
  const label = `${file}:${key.replace(/\.npy$/, '')}`;
  const entry = entries.get(key)!;
  // The entry's header first: its shape is checked against the caps and the budget before it is inflated.
  const header = entryNpyHeader(entry, file);
  if (!header) throw new DataError('Corrupt', `${label}: npy header truncated`, label);
  const m = /^[<>|=]([iu])([1248])$/.exec(header.descr);
  if (m) {
    const [total, t] = checkShape(header.shape, label, 'token ids');
    const inflated = entry.method === 0 ? 0 : header.need;
    checkRows(total, t, { bytes: Number(m[2]) as IntType['bytes'], signed: m[1] === 'i', little: true, name: header.descr }, { limit, budget, heldBytes: bytes.length + inflated }, label);
  }
  return npyTokens(memorySource(await readZipEntry(entry, file)), label, { limit });
}

// ---------------------------------------------------------------- .safetensors

export async function readSafetensorsTokens(file: string, limit?: number, budget?: number): Promise<TokenArray> {
  const st = await openSafetensors(file);
  let info;
  let dataStart: number;
  try {
    info = st.get('input_ids');
    if (!info) throw new DataError('NotFound', `${file}: needs a tensor \`input_ids\`; has ${st.tensors.map((t) => t.name).join(', ') || 'none'}`, file);
    dataStart = st.dataStart;
  } finally {
    await st.close();
  }
  const int = SAFETENSORS_INTS[info.dtype];
  if (!int) throw new DataError('Unsupported', `${file}: \`input_ids\` must hold integers, it is ${info.dtype}`, file);
  const [n, t] = checkShape(info.shape, file, '`input_ids`');
  const handle = await openForReading(file);
  try {
    return await readRows(await fileSource(handle, file), dataStart + info.dataOffsets[0], { ...int, little: true, name: info.dtype }, n, t, { limit, budget }, file);
  } finally {
    await handle.close();
  }
}

async function openForReading(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? 'NotFound' : 'Unsupported', `${file}: cannot open token data (${code ?? (e as Error).message})`, file);
  }
}
