import type { Checkpoint, CheckpointFormat } from '../checkpoint';

/** One tensor in a checkpoint summary. */
export interface TensorSummary {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** [begin, end) in the data section of the tensor's file. */
  readonly offsets?: readonly [number, number];
}

/** What `rebasin inspect --json` prints about a checkpoint (without `architecture`). */
export interface CheckpointSummary {
  readonly path: string;
  readonly format: CheckpointFormat;
  /** PyTorch / Flax: where the weights were found in the file. */
  readonly origin?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: readonly TensorSummary[];
  readonly totalParams: number;
  readonly totalBytes: number;
}

/** Summarises a checkpoint from its header alone (no tensor data read). */
export function checkpointSummary(ckpt: Checkpoint): CheckpointSummary {
  let totalParams = 0;
  let totalBytes = 0;
  const tensors = ckpt.tensors.map((t) => {
    totalParams += t.shape.reduce((a, b) => a * b, 1);
    totalBytes += t.byteLength;
    return { name: t.name, dtype: t.dtype, shape: [...t.shape], offsets: [t.dataOffsets[0], t.dataOffsets[1]] as const };
  });
  return { path: ckpt.path, format: ckpt.format, ...(ckpt.origin ? { origin: ckpt.origin } : {}), metadata: { ...ckpt.metadata }, tensors, totalParams, totalBytes };
}
