import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SafetensorsError, ioError } from './errors';

/** Largest single read/write call: keeps each syscall well under the 2 GiB limit. */
export const IO_CHUNK_BYTES = 64 * 1024 * 1024;

/** The bytes one read call returned; none means the file was truncated after its header was checked. */
function advance(bytesRead: number, file: string, at: number, total: number): number {
  if (bytesRead === 0) {
    throw new SafetensorsError('MetadataIncompleteBuffer', file, `file ended at offset ${at} while reading ${total} bytes (changed since it was opened?)`);
  }
  return bytesRead;
}

/**
 * Fills `target` from `position` with positioned reads (a read may return fewer bytes than
 * asked). A file that ends early was truncated after its header was checked.
 */
export async function readFully(handle: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(IO_CHUNK_BYTES, target.length - done);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(target, done, length, position + done));
    } catch (cause) {
      throw ioError(file, `read ${length} bytes at offset ${position + done}`, cause);
    }
    done += advance(bytesRead, file, position + done, target.length);
  }
}

/**
 * `readFully` with synchronous positioned reads on the handle's descriptor: for out-of-core
 * weight matching, whose products ask for a tensor where they cannot wait (the engine's worker
 * thread blocks on the page cache or the disk, nothing else runs on it meanwhile).
 */
export function readFullySync(fd: number, target: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(IO_CHUNK_BYTES, target.length - done);
    let bytesRead: number;
    try {
      bytesRead = readSync(fd, target, done, length, position + done);
    } catch (cause) {
      throw ioError(file, `read ${length} bytes at offset ${position + done}`, cause);
    }
    done += advance(bytesRead, file, position + done, target.length);
  }
}

/** Writes all of `bytes` at `position` (a write may be partial). */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const length = Math.min(IO_CHUNK_BYTES, bytes.length - done);
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await handle.write(bytes, done, length, position + done));
    } catch (cause) {
      throw ioError(file, `write ${length} bytes at offset ${position + done}`, cause);
    }
    done += bytesWritten;
  }
}
