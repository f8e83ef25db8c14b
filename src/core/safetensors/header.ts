import * as path from 'node:path';
import type { TensorInfo } from '../checkpoint';
import { isKnownDtype, tensorSize } from './dtypes';
import { findDuplicateKey } from './duplicate-keys';
import { findNonIntegerLiteral } from './integer-literals';
import { compareNames } from './names';
import { SafetensorsError, printable, tensorLabel } from './errors';

/** The reference library's cap on the JSON header (`MAX_HEADER_SIZE`). */
export const MAX_HEADER_BYTES = 100_000_000;
/** The u64 little-endian header length that starts every file. */
export const PREFIX_BYTES = 8;
const METADATA_KEY = '__metadata__';

/** A validated header: everything needed to find any tensor's bytes, and nothing read from the data. */
export interface ParsedHeader {
  /** Length of the JSON header in bytes (the prefix's value). */
  readonly headerLength: number;
  /** Absolute file position where the data section starts (8 + headerLength). */
  readonly dataStart: number;
  /** Bytes in the data section (file size - dataStart), all covered by tensors. */
  readonly dataLength: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Sorted by name. */
  readonly tensors: readonly TensorInfo[];
}

/**
 * Reads and checks the 8-byte prefix against the real file size, before anything sized by it is
 * allocated: the order of the reference's `read_metadata` (too small, over the cap, past the end).
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < PREFIX_BYTES || prefix.length < PREFIX_BYTES) {
    throw new SafetensorsError('HeaderTooSmall', file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, PREFIX_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError('HeaderTooLarge', file, `header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const length = Number(n);
  if (PREFIX_BYTES + length > fileSize) {
    throw new SafetensorsError(
      'InvalidHeaderLength',
      file,
      `header length ${length} runs past the end of the ${fileSize}-byte file`,
    );
  }
  return length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Decodes the header bytes to its JSON object, refusing bad UTF-8, bad JSON and duplicate keys. */
function parseJsonObject(headerBytes: Uint8Array, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch (cause) {
    throw new SafetensorsError('InvalidUtf8', file, 'header is not valid utf-8', undefined, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0].slice(0, 120) : 'parse error';
    throw new SafetensorsError('InvalidJson', file, `header is not valid json (${why})`, undefined, { cause });
  }
  if (!isPlainObject(json)) {
    throw new SafetensorsError('NotAnObject', file, `header json is ${describe(json)}, not an object`);
  }
  const literal = findNonIntegerLiteral(text);
  if (literal && literal.tensor !== METADATA_KEY) {
    const where = literal.tensor !== undefined ? `${tensorLabel(literal.tensor)} ${literal.field ?? 'entry'}` : 'the header';
    throw new SafetensorsError(
      literal.field === 'data_offsets' ? 'InvalidOffset' : 'InvalidShape',
      file,
      `${where} has the number ${printable(literal.literal, 40)}, not a non-negative integer (shapes and offsets are JSON integers: 1, not 1.0)`,
      literal.tensor,
    );
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    const where = duplicate.depth === 1 ? 'the header' : `\`${printable(duplicate.parent ?? '?')}\``;
    throw new SafetensorsError(
      'DuplicateKey',
      file,
      `key \`${printable(duplicate.key)}\` appears twice in ${where}`,
      duplicate.depth === 1 ? duplicate.key : duplicate.parent,
    );
  }
  return json;
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  // serde reads `__metadata__` as Option<HashMap<String, String>>: null means none.
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) {
    throw new SafetensorsError('InvalidMetadata', file, `__metadata__ is ${describe(value)}, not an object of strings`);
  }
  const entries = Object.entries(value);
  for (const [key, v] of entries) {
    if (typeof v !== 'string') {
      throw new SafetensorsError('InvalidMetadata', file, `__metadata__ value of \`${printable(key)}\` is ${describe(v)}, not a string`);
    }
  }
  // fromEntries defines own properties, so a `__proto__` key stays plain data.
  return Object.fromEntries(entries) as Record<string, string>;
}

interface Entry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly bytes: number;
  readonly begin: number;
  readonly end: number;
}

function parseOffset(value: unknown, which: string, name: string, file: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new SafetensorsError(
      'InvalidOffset',
      file,
      `${tensorLabel(name)} ${which} offset ${JSON.stringify(value) ?? String(value)} is not a non-negative integer`,
      name,
    );
  }
  if (!Number.isSafeInteger(value)) {
    throw new SafetensorsError('ValidationOverflow', file, `${tensorLabel(name)} ${which} offset ${value} is too large`, name);
  }
  return value;
}

/** Checks one header entry: `{dtype, shape, data_offsets}`, known dtype, sizable shape, integer offsets. */
function parseEntry(name: string, value: unknown, file: string): Entry {
  const label = tensorLabel(name);
  if (!isPlainObject(value)) {
    throw new SafetensorsError('InvalidTensorInfo', file, `${label} entry is ${describe(value)}, not {dtype, shape, data_offsets}`, name);
  }
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(value, field)) {
      throw new SafetensorsError('InvalidTensorInfo', file, `${label} entry has no \`${field}\``, name);
    }
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') {
    throw new SafetensorsError('InvalidTensorInfo', file, `${label} dtype is ${describe(dtype)}, not a string`, name);
  }
  if (!isKnownDtype(dtype)) {
    throw new SafetensorsError('UnknownDtype', file, `${label} has unknown dtype \`${printable(dtype, 40)}\``, name);
  }
  if (!Array.isArray(shape)) {
    throw new SafetensorsError('InvalidShape', file, `${label} shape is ${describe(shape)}, not an array`, name);
  }
  const size = tensorSize(dtype, shape);
  if ('problem' in size) {
    throw new SafetensorsError(size.problem, file, `${label} ${size.detail}`, name);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new SafetensorsError('InvalidOffset', file, `${label} data_offsets is not [begin, end]`, name);
  }
  const begin = parseOffset(offsets[0], 'begin', name, file);
  const end = parseOffset(offsets[1], 'end', name, file);
  return { name, dtype, shape: shape as number[], bytes: size.bytes, begin, end };
}

/**
 * Validates the header JSON against the real file size, as the reference's `Metadata::validate`
 * does: entries sorted by offsets must tile the data section from 0 with no gap or overlap, each
 * exactly shape x dtype bytes long, and the last must end exactly at the end of the file.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const headerLength = headerBytes.length;
  const dataStart = PREFIX_BYTES + headerLength;
  const json = parseJsonObject(headerBytes, file);
  const metadata = parseMetadata(json[METADATA_KEY], file);
  const entries: Entry[] = [];
  for (const name of Object.keys(json)) {
    if (name !== METADATA_KEY) entries.push(parseEntry(name, json[name], file));
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    const label = tensorLabel(e.name);
    if (e.end < e.begin) {
      throw new SafetensorsError('InvalidOffset', file, `${label} offsets [${e.begin}, ${e.end}] are reversed`, e.name);
    }
    if (e.begin > cursor) {
      throw new SafetensorsError('InvalidOffset', file, `${label} offsets leave a gap of ${e.begin - cursor} bytes before it`, e.name);
    }
    if (e.begin < cursor) {
      throw new SafetensorsError('InvalidOffset', file, `${label} offsets overlap the previous tensor`, e.name);
    }
    if (e.end - e.begin !== e.bytes) {
      throw new SafetensorsError(
        'InvalidTensorInfo',
        file,
        `${label} offsets span ${e.end - e.begin} bytes but ${e.dtype}[${e.shape.join(',')}] needs ${e.bytes}`,
        e.name,
      );
    }
    cursor = e.end;
  }

  const dataLength = fileSize - dataStart;
  if (cursor > dataLength) {
    throw new SafetensorsError(
      'MetadataIncompleteBuffer',
      file,
      `tensors need ${cursor} data bytes but the file holds ${dataLength} (truncated file?)`,
    );
  }
  if (cursor < dataLength) {
    throw new SafetensorsError('TrailingBytes', file, `${dataLength - cursor} bytes follow the last tensor's data`);
  }

  const absolute = path.resolve(file);
  const tensors: TensorInfo[] = entries
    .map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      byteLength: e.bytes,
      dataOffsets: [e.begin, e.end] as const,
      file: absolute,
    }))
    .sort((a, b) => compareNames(a.name, b.name));
  return { headerLength, dataStart, dataLength, metadata, tensors };
}

/**
 * Validates a whole safetensors file held in memory (small files, fuzzing): the same checks
 * the file reader makes, in the same order.
 */
export function parseSafetensorsBytes(bytes: Uint8Array, file = 'buffer.safetensors'): ParsedHeader {
  const length = readHeaderLength(bytes.subarray(0, PREFIX_BYTES), bytes.length, file);
  return parseHeader(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + length), bytes.length, file);
}
