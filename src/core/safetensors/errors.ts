import * as path from 'node:path';
import { displayName, InputFileError, safeText } from '../files';

/**
 * Every way reading or writing a safetensors checkpoint can fail. The first group mirrors the
 * reference library's `SafeTensorError` variants (huggingface/safetensors `tensor.rs`); the rest
 * cover sharded checkpoints and the writer.
 */
export type SafetensorsErrorKind =
  /** The file is shorter than the 8-byte header-length prefix. */
  | 'HeaderTooSmall'
  /** The header length prefix is above the 100,000,000-byte cap. */
  | 'HeaderTooLarge'
  /** The header length prefix points past the end of the file. */
  | 'InvalidHeaderLength'
  /** The header bytes are not valid UTF-8. */
  | 'InvalidUtf8'
  /** The header text is not valid JSON. */
  | 'InvalidJson'
  /** The header JSON is not an object. */
  | 'NotAnObject'
  /** `__metadata__` is not an object of string values. */
  | 'InvalidMetadata'
  /** A JSON object in the header repeats a key. */
  | 'DuplicateKey'
  /** A tensor entry is not `{dtype, shape, data_offsets}`, or its byte size does not match its offsets. */
  | 'InvalidTensorInfo'
  /** A tensor's dtype is not one of the safetensors dtypes. */
  | 'UnknownDtype'
  /** A shape is not an array of non-negative integers. */
  | 'InvalidShape'
  /** Element count, byte size or an offset does not fit in a safe integer. */
  | 'ValidationOverflow'
  /** `data_offsets` are malformed, reversed, overlapping or leave a gap. */
  | 'InvalidOffset'
  /** A sub-byte dtype (F4, F6) whose total bit count is not a whole number of bytes. */
  | 'MisalignedSize'
  /** The tensors claim more data than the file holds (truncated file). */
  | 'MetadataIncompleteBuffer'
  /** The file has bytes after the last tensor's data. */
  | 'TrailingBytes'
  /** A sharded index is not `{weight_map: {tensor: shard}}` or names a shard outside its folder. */
  | 'InvalidIndex'
  /** A shard named by a sharded index does not exist. */
  | 'MissingShard'
  /** A tensor appears twice (in two shards, or twice among the tensors given to the writer). */
  | 'DuplicateTensor'
  /** A tensor asked for (or listed in a shard index) is not where it should be. */
  | 'TensorNotFound'
  /** The dtype is valid but cannot be decoded to / encoded from float32 here (F4, F6, C64, ...). */
  | 'UnsupportedDtype'
  /** A read or write failed at the operating-system level (permissions, missing folder, I/O). */
  | 'Io'
  /** The writer was asked to write over one of its inputs. */
  | 'OutputIsInput'
  /** The write was cancelled through its AbortSignal. */
  | 'Aborted';

/** The one error class of the safetensors area; `kind` says which rule was broken. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';

  constructor(
    readonly kind: SafetensorsErrorKind,
    /** The file the rule concerns (as given by the caller). */
    readonly file: string,
    /** One-line, lowercase description of the rule broken, without the file name. */
    detail: string,
    /** The tensor concerned, when there is one. */
    readonly tensor?: string,
    options?: { cause?: unknown },
  ) {
    super(`${printable(displayName(file), 200)}: ${detail}`, options);
  }
}

/** Formats a tensor name for messages, e.g. "tensor `x`" (long names cut so messages stay one line). */
export function tensorLabel(name: string): string {
  return `tensor \`${printable(name)}\``;
}

/** Wraps an operating-system error (ENOENT, EACCES, ...) as a SafetensorsError of kind `Io`. */
export function ioError(file: string, action: string, cause: unknown): SafetensorsError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  const first = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
  const why = code && first.startsWith(`${code}: `) ? first.slice(code.length + 2) : first;
  return new SafetensorsError('Io', file, `cannot ${action}${code ? ` (${code})` : ''}: ${why}`, undefined, { cause });
}

/** A name from a file, made safe for a one-line message: control and bidi characters escaped, long names cut. */
export function printable(name: string, max = 80): string {
  return safeText(name, max);
}

/** An input-file refusal (not a regular file, too large, OS error) as a SafetensorsError of kind `Io`. */
export function fromInputFileError(error: unknown, file: string, action: string): unknown {
  if (!(error instanceof InputFileError)) return error;
  if (error.kind === 'Io' && error.cause !== undefined) return ioError(file, action, error.cause);
  return new SafetensorsError('Io', file, error.detail, undefined, { cause: error });
}
