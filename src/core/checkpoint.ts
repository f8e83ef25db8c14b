/**
 * The contracts every part of Re-Basin shares about checkpoints and tensors.
 * Implementations live beside this file (safetensors/, permspec/, matching/); these
 * types are the boundary, so change them only with every caller in view.
 */

/** One tensor's header entry, as read from a `.safetensors` header (no data read). */
export interface TensorInfo {
  readonly name: string;
  /** safetensors dtype string as written in the header: "F32", "BF16", "F8_E4M3", ... */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Bytes of data: product(shape) x dtype bits / 8. */
  readonly byteLength: number;
  /** [begin, end) relative to the start of the data section of `file` (PyTorch / Flax: absolute in the file, the span the tensor covers). */
  readonly dataOffsets: readonly [number, number];
  /** Absolute path of the file holding the bytes (the shard, for sharded checkpoints). */
  readonly file: string;
}

/** How a checkpoint's file is written: safetensors (one file, or shards behind an index JSON), PyTorch's `torch.save`, Flax msgpack. */
export type CheckpointFormat = 'safetensors' | 'sharded' | 'pytorch' | 'flax';

/**
 * A `.safetensors` file, a sharded checkpoint opened through its index JSON, a PyTorch
 * `torch.save` file or a Flax msgpack file (src/core/formats: read without running anything).
 */
export interface Checkpoint {
  /** The path the user gave (the weights file or the `*.index.json`). */
  readonly path: string;
  readonly format: CheckpointFormat;
  /** PyTorch / Flax: where the weights were found in the file ("`state_dict`, prefix `model.` removed"). */
  readonly origin?: string;
  /** `__metadata__` (single file) or the first shard's (sharded), string to string. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor, sorted by name. */
  readonly tensors: readonly TensorInfo[];
  get(name: string): TensorInfo | undefined;
  /** The tensor's raw little-endian bytes, read with positioned reads (never the whole file). */
  readRaw(name: string): Promise<Uint8Array>;
  /**
   * Bytes [begin, end) of the tensor's raw data, so a tensor can be read in chunks (diff, scan).
   * Optional: a reader without it is read whole, tensor by tensor (safetensors/chunks.ts).
   */
  readRawRange?(name: string, begin: number, end: number): Promise<Uint8Array>;
  /**
   * `readRaw` with synchronous positioned reads, for out-of-core weight matching (its products
   * read their operands from the file each time). Optional: safetensors files and shards have it.
   */
  readRawSync?(name: string): Uint8Array;
  /** The tensor decoded to float32 (F16, BF16, F8 exactly; integer types converted). */
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A dense float32 tensor held in memory, row-major. */
export interface DenseTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Tensors by name. */
export type TensorMap = ReadonlyMap<string, DenseTensor>;

/**
 * A permutation spec (the paper's `axes_to_perm`, resolved): which permutation acts on
 * each axis of each tensor, and each permutation's size.
 */
export interface PermSpec {
  /** Permutation name -> number of units it permutes (for a per-block permutation: blocks x block size). */
  readonly perms: Readonly<Record<string, number>>;
  /** Tensor name -> one entry per axis: the permutation acting on it, a block axis (attention heads), or null. */
  readonly axes: Readonly<Record<string, readonly AxisEntry[]>>;
  /**
   * Permutations used inside block axes at an inner level: name -> number of outer blocks. Their
   * value maps each block of `perms[name] / blocks` entries onto itself (one permutation per
   * block, see src/core/blockAxis.ts). Absent: no such permutation.
   */
  readonly blocks?: Readonly<Record<string, number>>;
}

/**
 * One stretch of a block axis: the axis viewed as nested levels `split` (outermost first, their
 * product is the stretch's length), e.g. [heads, head_dim] or [kv groups, heads per group,
 * head_dim]. `perms[0]` permutes the outer blocks; `perms[l]` (l >= 1), when not null, permutes
 * level l's index separately inside each outer block (one permutation per block of A).
 */
export interface BlockPart {
  readonly split: readonly number[];
  readonly perms: readonly (string | null)[];
}

/** An axis permuted in blocks: one or more parts laid end to end (GPT-2's c_attn packs q|k|v). */
export interface BlockAxis {
  readonly parts: readonly BlockPart[];
}

export type AxisEntry = string | BlockAxis | null;

/**
 * Permutations as gather indices (the paper's convention): `aligned_B[t] = take(B[t], perm[p], axis)`
 * on every axis p acts on; unit i of A is matched with unit perm[i] of B.
 */
export type Permutations = Readonly<Record<string, Int32Array>>;

/** Computes C[m,n] = A[m,k] . B[n,k]^T (both row-major). Provided by the engine (tfjs) or plain JS. */
export interface MatMulABt {
  abT(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array | Promise<Float32Array>;
  /**
   * The same product by blocks of A's rows (`rows` at a time), each block's C handed to
   * `onBlock` with its first row: B is prepared once for all blocks (a backend copies and
   * transposes it at each `abT`: at n = 11008, 8 blocks made 8 copies of a 180 MB operand).
   * Each block's values are those `abT` gives for the same rows. Optional: without it, one
   * `abT` per block.
   */
  abTByRows?(a: Float32Array, b: Float32Array, m: number, k: number, n: number, rows: number, onBlock: (c: Float32Array, firstRow: number) => void): void | Promise<void>;
}

/** One evaluated point of a loss curve: loss and accuracy of (1-λ)·A + λ·π(B) on one split. */
export interface CurvePoint {
  readonly lambda: number;
  readonly loss: number;
  readonly acc: number;
  /** Language models: exp(loss). */
  readonly perplexity?: number;
  /** Which path (the naive one, A to B, or the aligned one, A to π(B)); absent from a single evaluatePath. */
  readonly path?: 'naive' | 'aligned';
  readonly split?: 'test' | 'train';
}

/** Progress of a long computation, sent at most about once per second and at each sweep/epoch. */
export interface Progress {
  readonly stage: string;
  readonly fraction?: number;
  readonly message?: string;
  readonly iteration?: number;
  readonly objective?: number;
  /** A loss-curve point just evaluated (barrier jobs stream their curve; never throttled away). */
  readonly point?: CurvePoint;
}
