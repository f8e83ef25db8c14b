import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { dtypeBits, isKnownDtype, tensorSize } from './dtypes';
import { SafetensorsError, ioError, printable, tensorLabel } from './errors';
import { writeFully } from './file-io';
import { MAX_HEADER_BYTES, PREFIX_BYTES } from './header';
import { compareNames } from './names';
import { NAME_MAX_BYTES, assertNotAnInput, assertOutputIsRegularOrAbsent } from './output-guard';

/** One tensor to write; `read()` is called once, when its bytes are due, so big checkpoints stream. */
export interface TensorSource {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Expected byte size; checked against shape x dtype when given. */
  readonly byteLength?: number;
  read(): Promise<Uint8Array>;
}

export interface WriteSafetensorsOptions {
  /** Written as `__metadata__`, keys in the order given. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Files the output must not overwrite (checkpoints or sharded indexes, whose shards count too). */
  readonly inputs?: readonly string[];
  /** Other files the command reads (spec, model config, data): never overwritten either. */
  readonly alsoReads?: readonly string[];
  readonly signal?: AbortSignal;
}

interface Planned {
  readonly source: TensorSource;
  readonly bytes: number;
  readonly bits: number;
  begin: number;
}

const METADATA_KEY = '__metadata__';

/** Checks every source and lays the data out: widest dtypes first, so each tensor starts aligned. */
function plan(outPath: string, tensors: readonly TensorSource[]): Planned[] {
  const seen = new Set<string>();
  const planned: Planned[] = [];
  for (const source of tensors) {
    const { name, dtype, shape } = source;
    if (typeof name !== 'string' || name === METADATA_KEY) {
      throw new SafetensorsError('InvalidTensorInfo', outPath, `tensor name ${printable(JSON.stringify(name) ?? String(name))} is not allowed`);
    }
    if (seen.has(name)) throw new SafetensorsError('DuplicateTensor', outPath, `${tensorLabel(name)} is given twice`, name);
    seen.add(name);
    if (!isKnownDtype(dtype)) throw new SafetensorsError('UnknownDtype', outPath, `${tensorLabel(name)} has unknown dtype \`${printable(String(dtype), 40)}\``, name);
    const size = tensorSize(dtype, shape);
    if ('problem' in size) throw new SafetensorsError(size.problem, outPath, `${tensorLabel(name)} ${size.detail}`, name);
    if (source.byteLength !== undefined && source.byteLength !== size.bytes) {
      throw new SafetensorsError(
        'InvalidTensorInfo',
        outPath,
        `${tensorLabel(name)} byteLength ${source.byteLength} does not match ${dtype}[${shape.join(',')}] (${size.bytes} bytes)`,
        name,
      );
    }
    planned.push({ source, bytes: size.bytes, bits: dtypeBits(dtype), begin: 0 });
  }
  planned.sort((a, b) => b.bits - a.bits || compareNames(a.source.name, b.source.name));
  let offset = 0;
  for (const p of planned) {
    p.begin = offset;
    offset += p.bytes;
  }
  return planned;
}

/** The header JSON, keys sorted (`__metadata__` first), padded with spaces to a multiple of 8 bytes. */
function encodeHeader(outPath: string, planned: readonly Planned[], metadata: Readonly<Record<string, string>> | undefined): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new SafetensorsError('InvalidMetadata', outPath, `metadata value of \`${printable(k)}\` is not a string`);
      }
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  const byName = [...planned].sort((a, b) => compareNames(a.source.name, b.source.name));
  for (const p of byName) {
    const info = { dtype: p.source.dtype, shape: [...p.source.shape], data_offsets: [p.begin, p.begin + p.bytes] };
    parts.push(`${JSON.stringify(p.source.name)}:${JSON.stringify(info)}`);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError('HeaderTooLarge', outPath, `header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const out = new Uint8Array(PREFIX_BYTES + padded).fill(0x20, PREFIX_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, PREFIX_BYTES);
  return out;
}

function checkAborted(signal: AbortSignal | undefined, outPath: string): void {
  if (signal?.aborted) throw new SafetensorsError('Aborted', outPath, 'write cancelled');
}

async function readSource(outPath: string, p: Planned): Promise<Uint8Array> {
  const name = p.source.name;
  let bytes: Uint8Array;
  try {
    bytes = await p.source.read();
  } catch (cause) {
    if (cause instanceof SafetensorsError) throw cause;
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new SafetensorsError('Io', outPath, `cannot read source of ${tensorLabel(name)}: ${why}`, name, { cause });
  }
  if (!(bytes instanceof Uint8Array) || bytes.length !== p.bytes) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : 'no bytes';
    throw new SafetensorsError('InvalidTensorInfo', outPath, `${tensorLabel(name)} source gave ${got}, expected ${p.bytes}`, name);
  }
  return bytes;
}

/** `.<name>.<pid>.<12 hex>.tmp`: the pid lets a later run tell a killed run's leftovers from live work. */
const TEMP_NAME = /^\..*\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
function cutUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A temporary name beside the output, within NAME_MAX however long the output's own name is. */
export function tempNameFor(outPath: string): string {
  const suffix = `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  return `.${cutUtf8(path.basename(outPath), NAME_MAX_BYTES - 1 - suffix.length)}${suffix}`;
}

/** True when no process has `pid` (our own pid never counts as gone). */
export function processIsGone(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: alive, someone else's
  }
}

/**
 * Removes temporary files that runs killed before they could clean up (SIGKILL, power loss)
 * left in `dir`: our naming, a regular file, and a pid that no longer runs. Best effort.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || !processIsGone(Number(m[1]))) continue;
    const file = path.join(dir, name);
    try {
      if (!(await lstat(file)).isFile()) continue;
      await unlink(file);
      removed.push(name);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/** Best effort: make the rename itself durable. Some systems refuse fsync on a folder. */
async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    await handle.sync().catch(() => undefined);
    await handle.close();
  } catch {
    // the data is already synced; only the folder entry's durability is at stake
  }
}

/**
 * Writes a `.safetensors` file atomically: streams header and tensors (each read on demand) into a
 * temporary file beside `outPath`, fsyncs it, then renames it into place. Refuses to write over
 * any input; on error or abort the temporary file is removed and nothing is left behind.
 */
export async function writeSafetensors(
  outPath: string,
  tensors: readonly TensorSource[],
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  const { signal } = opts;
  checkAborted(signal, outPath);
  const planned = plan(outPath, tensors);
  const header = encodeHeader(outPath, planned, opts.metadata);
  await assertOutputIsRegularOrAbsent(outPath);
  await assertNotAnInput(outPath, opts.inputs ?? [], opts.alsoReads ?? []);
  checkAborted(signal, outPath);

  const dir = path.dirname(path.resolve(outPath));
  await removeStaleTemps(dir);
  const tmpPath = path.join(dir, tempNameFor(outPath));
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmpPath, 'wx', 0o644);
  } catch (cause) {
    throw ioError(outPath, `create a temporary file in folder ${dir}`, cause);
  }
  try {
    await writeFully(handle, header, 0, outPath);
    let position = header.length;
    for (const p of planned) {
      checkAborted(signal, outPath);
      const bytes = await readSource(outPath, p);
      checkAborted(signal, outPath);
      await writeFully(handle, bytes, position, outPath);
      position += bytes.length;
    }
    await handle.sync().catch((cause: unknown) => {
      throw ioError(outPath, 'flush the temporary file to disk', cause);
    });
    await handle.close();
    handle = undefined;
    checkAborted(signal, outPath);
    await rename(tmpPath, outPath).catch((cause: unknown) => {
      throw ioError(outPath, 'move the temporary file into place', cause);
    });
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(tmpPath).catch(() => undefined);
    throw error;
  }
  await syncFolder(dir);
}

/** What produced a checkpoint, recorded as `rebasin.*` metadata keys. */
export interface Provenance {
  readonly tool: string;
  readonly version: string;
  readonly method: string;
  readonly reference?: string;
  readonly seed?: number;
  readonly [key: string]: string | number | boolean | undefined;
}

/**
 * Keeps the source's `__metadata__` and adds one `rebasin.<key>` entry per provenance field
 * (undefined fields skipped), so a written checkpoint says how it was made.
 */
export function provenanceMetadata(source: Readonly<Record<string, string>>, extra: Provenance): Record<string, string> {
  const out: Record<string, string> = Object.fromEntries(Object.entries(source));
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) out[`rebasin.${key}`] = String(value);
  }
  return out;
}
