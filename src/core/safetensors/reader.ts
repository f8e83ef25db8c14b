import type { FileHandle } from 'node:fs/promises';
import { openRegularFile } from '../files';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { decodeToFloat32 } from './codec';
import { SafetensorsError, fromInputFileError, ioError, tensorLabel } from './errors';
import { readFully, readFullySync } from './file-io';
import { PREFIX_BYTES, parseHeader, readHeaderLength } from './header';

/** A single opened `.safetensors` file: the Checkpoint contract plus where its data lives. */
export interface SafetensorsFile extends Checkpoint {
  readonly format: 'safetensors';
  /** File size in bytes when opened. */
  readonly fileSize: number;
  /** JSON header length (the 8-byte prefix's value). */
  readonly headerLength: number;
  /** Absolute position of the data section (8 + headerLength). */
  readonly dataStart: number;
  readRawRange(name: string, begin: number, end: number): Promise<Uint8Array>;
  readRawSync(name: string): Uint8Array;
}

class OpenSafetensorsFile implements SafetensorsFile {
  readonly format = 'safetensors' as const;
  private readonly byName: ReadonlyMap<string, TensorInfo>;
  private handle: FileHandle | undefined;

  constructor(
    readonly path: string,
    handle: FileHandle,
    readonly fileSize: number,
    readonly headerLength: number,
    readonly dataStart: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: readonly TensorInfo[],
  ) {
    this.handle = handle;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  get(name: string): TensorInfo | undefined {
    return this.byName.get(name);
  }

  private info(name: string): TensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new SafetensorsError('TensorNotFound', this.path, `${tensorLabel(name)} not found`, name);
    return info;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const handle = this.handle;
    if (!handle) throw new SafetensorsError('Io', this.path, `cannot read ${tensorLabel(name)}: checkpoint is closed`, name);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(info.byteLength); // fresh, so byteOffset is 0 and every dtype view is aligned
    } catch (cause) {
      throw ioError(this.path, `hold ${tensorLabel(name)} (${info.byteLength} bytes) in memory`, cause);
    }
    await readFully(handle, bytes, this.dataStart + info.dataOffsets[0], this.path);
    return bytes;
  }

  readRawSync(name: string): Uint8Array {
    const info = this.info(name);
    const handle = this.handle;
    if (!handle) throw new SafetensorsError('Io', this.path, `cannot read ${tensorLabel(name)}: checkpoint is closed`, name);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(info.byteLength); // fresh, as readRaw's
    } catch (cause) {
      throw ioError(this.path, `hold ${tensorLabel(name)} (${info.byteLength} bytes) in memory`, cause);
    }
    readFullySync(handle.fd, bytes, this.dataStart + info.dataOffsets[0], this.path);
    return bytes;
  }

  async readRawRange(name: string, begin: number, end: number): Promise<Uint8Array> {
    const info = this.info(name);
    const handle = this.handle;
    if (!handle) throw new SafetensorsError('Io', this.path, `cannot read ${tensorLabel(name)}: checkpoint is closed`, name);
    if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && 0 <= begin && begin <= end && end <= info.byteLength)) {
      throw new SafetensorsError('InvalidOffset', this.path, `bytes ${begin}..${end} are outside ${tensorLabel(name)} (${info.byteLength} bytes)`, name);
    }
    const bytes = new Uint8Array(end - begin); // fresh: byteOffset 0, every dtype view aligned
    await readFully(handle, bytes, this.dataStart + info.dataOffsets[0] + begin, this.path);
    return bytes;
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    return decodeToFloat32(info.dtype, await this.readRaw(name), this.path, name);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

/**
 * Opens one `.safetensors` file: reads the 8-byte prefix and the header with positioned reads,
 * validates them against the real file size, and keeps the handle for on-demand tensor reads.
 * No tensor data is read, and nothing is allocated from the header's claims before they are
 * checked against the file size.
 */
export async function openSafetensors(filePath: string): Promise<SafetensorsFile> {
  let handle: FileHandle;
  let fileSize: number;
  try {
    // Symlinks followed; a FIFO, socket, device or folder is refused before any read.
    ({ handle, size: fileSize } = await openRegularFile(filePath, 'checkpoint'));
  } catch (error) {
    throw fromInputFileError(error, filePath, 'open file');
  }
  try {
    const prefix = new Uint8Array(PREFIX_BYTES);
    if (fileSize >= PREFIX_BYTES) await readFully(handle, prefix, 0, filePath);
    const headerLength = readHeaderLength(prefix, fileSize, filePath);
    const headerBytes = new Uint8Array(headerLength); // bounded: <= 100 MB and <= the file size
    await readFully(handle, headerBytes, PREFIX_BYTES, filePath);
    const header = parseHeader(headerBytes, fileSize, filePath);
    return new OpenSafetensorsFile(
      filePath,
      handle,
      fileSize,
      header.headerLength,
      header.dataStart,
      header.metadata,
      header.tensors,
    );
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}
