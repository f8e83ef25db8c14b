/**
 * Reading input files that may come from anywhere: only regular files are read (a FIFO, socket,
 * device or folder is refused before any read, and a FIFO never blocks the open), and every
 * whole-file read has a size cap checked with fstat first.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

export type InputFileErrorKind =
  /** The path is a folder, FIFO, socket or device. */
  | 'NotRegular'
  /** The file is larger than the cap for its kind. */
  | 'TooLarge'
  /** The operating system refused (missing file, permissions, I/O). */
  | 'Io'
  /** A JSON side file is not UTF-8 JSON, or not a JSON object. */
  | 'NotJson';

/** One-line error about an input file; `file` is the path as given. */
export class InputFileError extends Error {
  override readonly name = 'InputFileError';
  constructor(
    readonly kind: InputFileErrorKind,
    readonly file: string,
    /** The message without the file name. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${safeText(displayName(file), 200)}: ${detail}`, options);
  }
}

/**
 * Names every Hugging Face folder gives its files (weights, shards, index, config, tokenizer):
 * alone they do not say whose file it is.
 */
const SHARED_NAME = /^((model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?|(config|tokenizer|tokenizer_config|generation_config|special_tokens_map)\.json)$/;

/**
 * A file's name in an error line: its base name, with its folder in front when the name is one
 * every Hugging Face folder uses (`gpt2-b/model.safetensors`, not `model.safetensors`, which is
 * A's and B's name alike). A line about a file names the file; checkpointName is how a model is
 * named in titles and cards (`gpt2-b`).
 */
export function displayName(file: string): string {
  const name = path.basename(file) || file;
  if (!SHARED_NAME.test(name)) return name;
  const folder = path.basename(path.dirname(path.resolve(file)));
  return folder ? `${folder}/${name}` : name;
}

/** Caps for whole-file reads (bytes). JSON inputs are small; data sets are read into memory. */
export const MAX_JSON_BYTES = 100_000_000;
export const MAX_MODEL_CONFIG_BYTES = 1_000_000;
/** Node cannot hold one file of 2 GiB or more in a Buffer. */
export const MAX_DATA_FILE_BYTES = 2 ** 31 - 1;

// Characters a terminal interprets rather than shows: C0 and C1 controls (ESC, CR, CSI), DEL,
// line/paragraph separators and the bidirectional overrides, marks and isolates.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Text from a file made safe for one terminal line: unsafe characters escaped as \uXXXX, long text cut. */
export function safeText(text: string, max = 80): string {
  // Cut before escaping so a 3M-character name costs nothing.
  const head = text.length > max * 2 ? text.slice(0, max * 2) : text;
  const escaped = head.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > max || head.length < text.length ? `${escaped.slice(0, max - 3)}...` : escaped;
}

/** JSON text with the characters JSON.stringify leaves raw but terminals act on escaped (same value). */
export function safeJson(json: string): string {
  // eslint-disable-next-line no-control-regex
  return json.replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a file';
}

function notRegular(file: string, s: Stats, what: string): InputFileError {
  return new InputFileError('NotRegular', file, `${what} is not a regular file (it is ${kindOf(s)})`);
}

function osError(file: string, action: string, cause: unknown): InputFileError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  const why: Record<string, string> = {
    ENOENT: 'does not exist',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EISDIR: 'is a folder',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'name too long',
    ENOTDIR: 'a part of the path is not a folder',
  };
  return new InputFileError('Io', file, `cannot ${action}: ${why[code] ?? (cause instanceof Error ? cause.message.split('\n')[0] : String(cause))}`, { cause });
}

/** Read-only, and never blocking on a FIFO (the fstat check then refuses it). */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Opens a regular file for reading (symlinks followed). `what` names the file's role in
 * messages ("checkpoint", "spec", ...). The caller closes the handle.
 */
export async function openRegularFile(file: string, what: string): Promise<{ handle: FileHandle; size: number }> {
  // stat first: opening a socket fails (ENXIO) and a device may have side effects.
  let before: Stats;
  try {
    before = await stat(file);
  } catch (cause) {
    throw osError(file, `open ${what}`, cause);
  }
  if (!before.isFile()) throw notRegular(file, before, what);
  let handle: FileHandle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (cause) {
    throw osError(file, `open ${what}`, cause);
  }
  try {
    const s = await handle.stat(); // the file opened may have been swapped since the stat
    if (!s.isFile()) throw notRegular(file, s, what);
    return { handle, size: s.size };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error instanceof InputFileError ? error : osError(file, `open ${what}`, error);
  }
}

function tooLarge(file: string, what: string, size: number, max: number): InputFileError {
  return new InputFileError('TooLarge', file, `${what} is ${size} bytes, over the ${max}-byte limit`);
}

/** Reads a whole regular file of at most `maxBytes` (fstat checked before reading). */
export async function readBoundedFile(file: string, maxBytes: number, what: string): Promise<Buffer> {
  const { handle, size } = await openRegularFile(file, what);
  try {
    if (size > maxBytes) throw tooLarge(file, what, size, maxBytes);
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(out, done, Math.min(size - done, 64 * 1024 * 1024), done).catch((cause: unknown) => {
        throw osError(file, `read ${what}`, cause);
      });
      if (bytesRead === 0) break; // shrank since the stat: keep what is there
      done += bytesRead;
    }
    return done === size ? out : out.subarray(0, done);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The synchronous twin of readBoundedFile, for readers that are synchronous. */
export function readBoundedFileSync(file: string, maxBytes: number, what: string): Buffer {
  let before: Stats;
  try {
    before = statSync(file);
  } catch (cause) {
    throw osError(file, `open ${what}`, cause);
  }
  if (!before.isFile()) throw notRegular(file, before, what);
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (cause) {
    throw osError(file, `open ${what}`, cause);
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw notRegular(file, s, what);
    if (s.size > maxBytes) throw tooLarge(file, what, s.size, maxBytes);
    const out = Buffer.allocUnsafe(s.size);
    let done = 0;
    while (done < s.size) {
      const n = readSync(fd, out, done, Math.min(s.size - done, 64 * 1024 * 1024), done);
      if (n === 0) break;
      done += n;
    }
    return done === s.size ? out : out.subarray(0, done);
  } catch (error) {
    throw error instanceof InputFileError ? error : osError(file, `read ${what}`, error);
  } finally {
    closeSync(fd);
  }
}

/** Decodes UTF-8 text read with one of the bounded readers (a BOM is dropped). */
export function utf8Text(bytes: Uint8Array): string {
  return new TextDecoder('utf-8').decode(bytes);
}

/** Caps for the JSON side files read beside a checkpoint (bytes). */
export const MAX_CONFIG_JSON_BYTES = 16 * 1024 * 1024;
/** tokenizer.json of released models is up to ~35 MB (Gemma 3); larger is not a tokenizer. */
export const MAX_TOKENIZER_JSON_BYTES = 256 * 1024 * 1024;

function parseJsonObject(file: string, bytes: Uint8Array, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    const why = cause instanceof SyntaxError ? cause.message.split('\n')[0] : 'not UTF-8 text';
    throw new InputFileError('NotJson', file, `${what} is not valid JSON (${safeText(why, 120)})`, { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputFileError('NotJson', file, `${what} must be a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * The one reader of JSON side files (config.json, index json, spec json, tokenizer.json,
 * generation_config.json): a regular file of at most `maxBytes` (a FIFO, device or symlink to
 * /dev/zero is refused before any read), holding a JSON object.
 */
export async function readJsonObject(file: string, maxBytes: number, what: string): Promise<Record<string, unknown>> {
  return parseJsonObject(file, await readBoundedFile(file, maxBytes, what), what);
}

/** The synchronous twin of readJsonObject. */
export function readJsonObjectSync(file: string, maxBytes: number, what: string): Record<string, unknown> {
  return parseJsonObject(file, readBoundedFileSync(file, maxBytes, what), what);
}
