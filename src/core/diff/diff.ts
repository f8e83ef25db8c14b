/**
 * `rebasin diff`: how far checkpoint B is from A, tensor by tensor, per layer and in total, and
 * optionally how far π(B) (B with alignment permutations applied) is. Tensors are read in chunks
 * (safetensors/chunks.ts) and compared in float64 sums (sums.ts), so memory stays flat whatever the
 * checkpoints' size; only a tensor that the permutations move is held whole, in B's stored dtype,
 * while it is compared (its permuted bytes are π(B)'s exactly as `rebasin align` writes them).
 */
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { permuteBytes } from '../matching/permute';
import { bytesValueChunks, CHUNK_ELEMENTS, isNumericDtype, readableElementBytes, tensorValueChunks, type TensorValues } from '../safetensors/chunks';
import { layerGroupOf } from './layers';
import { addPairs, addSums, emptySums, figuresOf, type DiffFigures, type PairSums } from './sums';

export interface TensorDiff extends DiffFigures {
  readonly name: string;
  readonly shape: number[];
  /** A's dtype. */
  readonly dtype: string;
  /** B's dtype, present when it differs from A's (the values are still compared). */
  readonly dtypeB?: string;
}

export interface GroupDiff extends DiffFigures {
  readonly name: string;
  /** Tensors compared in this group (all of them for the totals). */
  readonly tensors: number;
}

/** A tensor in both checkpoints whose shape or dtype differs; compared only when the shapes agree. */
export interface Mismatch {
  readonly name: string;
  readonly shapeA: number[];
  readonly shapeB: number[];
  readonly dtypeA: string;
  readonly dtypeB: string;
  readonly compared: boolean;
}

export interface DiffFiguresSet {
  readonly tensors: TensorDiff[];
  readonly layers: GroupDiff[];
  readonly totals: GroupDiff;
}

export interface CheckpointDiff extends DiffFiguresSet {
  readonly mismatches: Mismatch[];
  readonly onlyInA: string[];
  readonly onlyInB: string[];
  /** Tensors in both that cannot be read as numbers (F4, F6, C64). */
  readonly skipped: { name: string; reason: string }[];
  /** The same figures for A against π(B), when permutations were given. */
  readonly aligned?: DiffFiguresSet;
}

export interface DiffOptions {
  /** π's permutation on each axis of B's tensor (all null: unmoved); given: `aligned` is filled. */
  readonly permutationsOf?: (tensor: string, rank: number) => readonly (Int32Array | null)[];
  /** Called before each chunk: throw to cancel. */
  readonly beforeChunk?: () => void;
  /** Bytes of both checkpoints read so far, of the total, and the tensor at hand. */
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
  readonly chunkElements?: number;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

class FigureSet {
  private readonly tensorSums: { info: TensorInfo; dtypeB: string; sums: PairSums }[] = [];
  add(info: TensorInfo, dtypeB: string, sums: PairSums): void {
    this.tensorSums.push({ info, dtypeB, sums });
  }
  result(): DiffFiguresSet {
    const layers = new Map<string, { sums: PairSums; tensors: number }>();
    const total = emptySums();
    for (const { info, sums } of this.tensorSums) {
      const key = layerGroupOf(info.name);
      const g = layers.get(key) ?? { sums: emptySums(), tensors: 0 };
      addSums(g.sums, sums);
      g.tensors++;
      layers.set(key, g);
      addSums(total, sums);
    }
    return {
      tensors: this.tensorSums.map(({ info, dtypeB, sums }) => ({
        name: info.name,
        shape: [...info.shape],
        dtype: info.dtype,
        ...(dtypeB !== info.dtype ? { dtypeB } : {}),
        ...figuresOf(sums),
      })),
      layers: [...layers].map(([name, g]) => ({ name, tensors: g.tensors, ...figuresOf(g.sums) })),
      totals: { name: 'total', tensors: this.tensorSums.length, ...figuresOf(total) },
    };
  }
}

async function pairUp(
  aChunks: AsyncIterable<TensorValues>, bChunks: Iterable<TensorValues> | AsyncIterable<TensorValues>, into: PairSums[],
  others: Iterator<TensorValues>[], onChunk: (elements: number) => void,
): Promise<void> {
  const bIt = Symbol.asyncIterator in bChunks ? bChunks[Symbol.asyncIterator]() : bChunks[Symbol.iterator]();
  for await (const a of aChunks) {
    const b = await bIt.next();
    if (b.done) throw new Error('B ended before A');
    addPairs(into[0], a, b.value);
    others.forEach((it, k) => addPairs(into[k + 1], a, it.next().value as TensorValues));
    onChunk(a.length);
  }
}

/** Compares A and B (and π(B) when `permutationsOf` is given), tensor by tensor in A's order. */
export async function diffCheckpoints(a: Checkpoint, b: Checkpoint, opts: DiffOptions = {}): Promise<CheckpointDiff> {
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  const mismatches: Mismatch[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const pairs: { ta: TensorInfo; tb: TensorInfo }[] = [];
  for (const ta of a.tensors) {
    const tb = b.get(ta.name);
    if (!tb) continue;
    const compared = sameShape(ta.shape, tb.shape);
    if (!compared || ta.dtype !== tb.dtype) mismatches.push({ name: ta.name, shapeA: [...ta.shape], shapeB: [...tb.shape], dtypeA: ta.dtype, dtypeB: tb.dtype, compared });
    if (!compared) continue;
    const unreadable = [ta.dtype, tb.dtype].find((d) => !isNumericDtype(d));
    if (unreadable !== undefined) {
      skipped.push({ name: ta.name, reason: `dtype ${unreadable} cannot be read as numbers` });
      continue;
    }
    pairs.push({ ta, tb });
  }
  const total = pairs.reduce((s, p) => s + p.ta.byteLength + p.tb.byteLength, 0);
  let done = 0;
  const naive = new FigureSet();
  const aligned = opts.permutationsOf ? new FigureSet() : undefined;
  for (const { ta, tb } of pairs) {
    const perms = opts.permutationsOf?.(ta.name, tb.shape.length) ?? [];
    const moved = perms.some((p) => p !== null);
    const widthA = readableElementBytes(a, ta.name);
    const widthB = readableElementBytes(b, tb.name);
    const sums = [emptySums(), emptySums()];
    const onChunk = (elements: number): void => {
      done += elements * (widthA + widthB);
      opts.onProgress?.(Math.min(done, total), total, ta.name);
    };
    const aChunks = (async function* (): AsyncGenerator<TensorValues> {
      for await (const x of tensorValueChunks(a, ta.name, chunk)) {
        opts.beforeChunk?.();
        yield x;
      }
    })();
    if (moved) {
      // Held whole: a gather along a permuted axis reads from anywhere in the tensor.
      const raw = await b.readRaw(tb.name);
      const permuted = permuteBytes(raw, tb.shape, perms);
      if (permuted === null) throw new Error(`${b.path}: tensor \`${tb.name}\` (${tb.dtype}) cannot be permuted`);
      await pairUp(aChunks, bytesValueChunks(raw, tb.dtype, widthB, chunk), sums, [bytesValueChunks(permuted, tb.dtype, widthB, chunk)], onChunk);
    } else {
      await pairUp(aChunks, tensorValueChunks(b, tb.name, chunk), sums, [], onChunk);
    }
    naive.add(ta, tb.dtype, sums[0]);
    aligned?.add(ta, tb.dtype, moved ? sums[1] : sums[0]);
  }
  const onlyInB = b.tensors.filter((t) => !a.get(t.name)).map((t) => t.name);
  return {
    ...naive.result(),
    mismatches,
    onlyInA: a.tensors.filter((t) => !b.get(t.name)).map((t) => t.name),
    onlyInB,
    skipped,
    ...(aligned ? { aligned: aligned.result() } : {}),
  };
}
