import type { FileHandle } from 'node:fs/promises';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { decodeToFloat32 } from '../safetensors/codec';
import { compareNames } from '../safetensors/names';
import { CheckpointFormatError, quoted } from './errors';

/** What PyTorch and Flax checkpoints share: an index of tensors read at open, an open handle, reads on demand. */
export abstract class LazyCheckpoint implements Checkpoint {
  abstract readonly format: 'pytorch' | 'flax';
  readonly metadata: Readonly<Record<string, string>> = {};
  readonly tensors: readonly TensorInfo[];
  private readonly byName: ReadonlyMap<string, TensorInfo>;
  private handle: FileHandle | undefined;

  constructor(
    readonly path: string,
    handle: FileHandle,
    tensors: readonly TensorInfo[],
    /** Where the weights were found in the file. */
    readonly origin: string,
  ) {
    this.handle = handle;
    this.tensors = [...tensors].sort((a, b) => compareNames(a.name, b.name));
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  get(name: string): TensorInfo | undefined {
    return this.byName.get(name);
  }

  /** The tensor and the open handle, or the one-line reason there are none. */
  protected reading(name: string): { info: TensorInfo; handle: FileHandle } {
    const info = this.byName.get(name);
    if (!info) throw new CheckpointFormatError('TensorNotFound', this.path, `tensor ${quoted(name)} not found`);
    if (!this.handle) throw new CheckpointFormatError('Io', this.path, `cannot read tensor ${quoted(name)}: checkpoint is closed`);
    return { info, handle: this.handle };
  }

  abstract readRaw(name: string): Promise<Uint8Array>;

  async readFloat32(name: string): Promise<Float32Array> {
    const raw = await this.readRaw(name);
    return decodeToFloat32(this.byName.get(name)!.dtype, raw, this.path, name);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}
