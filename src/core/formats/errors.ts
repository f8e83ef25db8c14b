import * as path from 'node:path';
import { safeText } from '../files';

/**
 * Why a PyTorch or Flax checkpoint was refused. `Unsafe`: the file asks for code to run (a global
 * or call outside the allow-list); `Corrupt`: it breaks its own format (truncated, offsets past
 * the end, stack or memo misuse); `Unsupported`: valid but not read here; `TooLarge`: over a bound.
 */
export type FormatErrorKind = 'Unsafe' | 'Corrupt' | 'Unsupported' | 'TooLarge' | 'TensorNotFound' | 'Io';

/** One line naming the file (its base name) and the problem. */
export class CheckpointFormatError extends Error {
  override readonly name = 'CheckpointFormatError';

  constructor(
    readonly kind: FormatErrorKind,
    /** The file as given by the caller. */
    readonly file: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${safeText(path.basename(file), 200)}: ${detail}`, options);
  }
}

/** A name read from a file, safe for a one-line message. */
export function quoted(text: string, max = 80): string {
  return `\`${safeText(text, max)}\``;
}
