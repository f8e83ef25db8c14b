/**
 * The Hugging Face `save_pretrained` layout, in and out. A user may name a checkpoint by its
 * folder, its `model.safetensors` or its `model.safetensors.index.json`; when that checkpoint is
 * a Hugging Face folder (config.json beside the weights) or sharded, and `--out` does not end in
 * `.safetensors`, the output is a folder in the same layout: the same shard file names holding
 * the same tensors (index `weight_map` kept, `metadata.total_size` recomputed), config.json,
 * generation_config.json and the tokenizer files copied, `__metadata__` with `format: pt`.
 * Layout reference: huggingface.co/docs/safetensors and transformers' sharded checkpoints.
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { MAX_CONFIG_JSON_BYTES, readJsonObjectSync } from '../files';
import { SafetensorsError, printable } from '../safetensors/errors';
import { isShardIndexPath, readShardIndex } from '../safetensors/sharded';
import { assertFolderTarget, writeCheckpointFolder, type ShardToWrite } from '../safetensors/shardedWriter';
import { writeSafetensors, type TensorSource } from '../safetensors/writer';

export const SINGLE_WEIGHTS = 'model.safetensors';
export const SHARD_INDEX = 'model.safetensors.index.json';
/** Older Hugging Face folders: PyTorch and Flax weights (read without running them, src/core/formats). */
const OTHER_WEIGHTS: readonly { readonly file: string; readonly sharded: boolean }[] = [
  { file: 'pytorch_model.bin', sharded: false },
  { file: 'pytorch_model.bin.index.json', sharded: true },
  { file: 'flax_model.msgpack', sharded: false },
];

/** Files `save_pretrained` / tokenizers write beside the weights, copied to an output folder. */
export const COMPANION_FILES: readonly string[] = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'vocab.txt',
  'merges.txt',
  'tokenizer.model',
  'spiece.model',
  'chat_template.jinja',
];

export interface CheckpointLocation {
  /** What openCheckpoint reads: a `.safetensors` file or a shard index. */
  readonly weights: string;
  /** The folder holding the weights. */
  readonly folder: string;
  readonly sharded: boolean;
  /** Named as a folder, or config.json sits beside the weights. */
  readonly huggingFace: boolean;
}

/**
 * Where a checkpoint's weights are: a folder means its model.safetensors, else its
 * model.safetensors.index.json; a file is itself. A folder with neither is an error naming it.
 */
export function locateCheckpoint(p: string): CheckpointLocation {
  let isDir = false;
  try {
    isDir = statSync(p).isDirectory();
  } catch {
    // not there: let the reader report the missing file in its own words
  }
  if (isDir) {
    const single = path.join(p, SINGLE_WEIGHTS);
    const index = path.join(p, SHARD_INDEX);
    const weights = existsSync(single) ? single : existsSync(index) ? index : undefined;
    if (weights) return { weights, folder: path.resolve(p), sharded: weights === index, huggingFace: true };
    const other = OTHER_WEIGHTS.find((w) => existsSync(path.join(p, w.file)));
    if (!other) throw new SafetensorsError('Io', p, `folder has neither ${SINGLE_WEIGHTS} nor ${SHARD_INDEX} (nor pytorch_model.bin, its index or flax_model.msgpack)`);
    return { weights: path.join(p, other.file), folder: path.resolve(p), sharded: other.sharded, huggingFace: true };
  }
  const folder = path.dirname(path.resolve(p));
  return { weights: p, folder, sharded: isShardIndexPath(p), huggingFace: existsSync(path.join(folder, 'config.json')) };
}

/**
 * True for a Hugging Face language model: a folder, or weights with a config.json beside them
 * that names a `model_type`. Such checkpoints are evaluated on token ids or text, the others
 * (classifiers) on labelled examples.
 */
export function isLanguageModelCheckpoint(p: string): boolean {
  try {
    if (statSync(p).isDirectory()) return true;
    const config = path.join(path.dirname(p), 'config.json');
    if (!existsSync(config)) return false;
    // Capped and regular files only: a config.json linked to /dev/zero is refused, not read.
    return typeof readJsonObjectSync(config, MAX_CONFIG_JSON_BYTES, 'config.json').model_type === 'string';
  } catch {
    return false;
  }
}

/**
 * The `model_type` of the config.json in folder `p` or beside weights `p`; undefined when there
 * is none, or it cannot be read (capped and regular files only, as above).
 */
export function hfModelType(p: string): string | undefined {
  try {
    const config = statSync(p).isDirectory() ? path.join(p, 'config.json') : path.join(path.dirname(p), 'config.json');
    if (!existsSync(config)) return undefined;
    const t = readJsonObjectSync(config, MAX_CONFIG_JSON_BYTES, 'config.json').model_type;
    return typeof t === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** The weights file or index to open for a path that may be a folder. */
export function weightsPath(p: string): string {
  return locateCheckpoint(p).weights;
}

/** True when writing an output modelled on `layout` at `out` makes a folder (see the module comment). */
export function writesFolder(layout: CheckpointLocation, out: string): boolean {
  return !out.toLowerCase().endsWith('.safetensors') && (layout.huggingFace || layout.sharded);
}

/** The companion files present in a folder (anything by those names: the writer refuses what is not a regular file). */
export function companionFiles(folder: string): string[] {
  return COMPANION_FILES.map((f) => path.join(folder, f)).filter((f) => existsSync(f));
}

/** The output name of an input shard: `pytorch_model-00001-of-00002.bin` is written as `model-00001-of-00002.safetensors`. */
export function safetensorsShardName(file: string): string {
  if (file.toLowerCase().endsWith('.safetensors')) return file;
  return `${file.replace(/\.[^.]*$/, '').replace(/^pytorch_model/, 'model')}.safetensors`;
}

/**
 * The checks of a folder output that need no computation (handlers call it first): `out` holds
 * no input, is absent, empty or an earlier output of ours, and the side files to copy are regular
 * files of a sane size.
 */
export async function checkFolderOutput(out: string, layoutOf: string, inputs: readonly string[], alsoReads: readonly string[] = []): Promise<void> {
  await assertFolderTarget(out, inputs.map(weightsPath), alsoReads, companionFiles(locateCheckpoint(layoutOf).folder));
}

/**
 * Groups the tensors to write into the input's shards: the same file names, each holding the
 * tensors the input's index puts there. A tensor the index does not place goes to the last shard.
 */
export async function shardPlan(layout: CheckpointLocation, sources: readonly TensorSource[]): Promise<{ shards: ShardToWrite[]; indexMetadata?: Record<string, unknown> }> {
  if (!layout.sharded) return { shards: [{ file: SINGLE_WEIGHTS, tensors: sources }] };
  const index = await readShardIndex(layout.weights);
  const files = index.shards.map((s) => safetensorsShardName(path.basename(s)));
  const byFile = new Map<string, TensorSource[]>(files.map((f) => [f, []]));
  for (const s of sources) {
    const shard = index.weightMap.get(s.name);
    byFile.get(shard ? safetensorsShardName(path.basename(shard)) : files[files.length - 1])!.push(s);
  }
  return { shards: files.map((file) => ({ file, tensors: byFile.get(file)! })), indexMetadata: { ...index.metadata } };
}

export interface WriteOutputOptions {
  /** `__metadata__` (provenance); `format: pt` is added for a Hugging Face folder. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly inputs: readonly string[];
  /** Other files the command reads (spec, model config, data): never written over. */
  readonly alsoReads?: readonly string[];
  readonly signal?: AbortSignal;
  /** A Hugging Face folder's progress: called before each shard (0-based). */
  readonly onShard?: (index: number, count: number, file: string) => void;
  /** A Hugging Face folder's side files written with this text instead of copied (a rewritten config.json). */
  readonly files?: Readonly<Record<string, string>>;
}

/**
 * Writes an output modelled on the checkpoint at `layoutOf` (as the user named it): a Hugging Face
 * folder when writesFolder says so, else one `.safetensors` file at `out` (the original contract).
 */
export async function writeCheckpointOutput(out: string, layoutOf: string, sources: readonly TensorSource[], opts: WriteOutputOptions): Promise<'folder' | 'file'> {
  const layout = locateCheckpoint(layoutOf);
  const inputs = opts.inputs.map(weightsPath);
  if (!writesFolder(layout, out)) {
    await writeSafetensors(out, sources, { metadata: opts.metadata, inputs, alsoReads: opts.alsoReads, signal: opts.signal });
    return 'file';
  }
  const { shards, indexMetadata } = await shardPlan(layout, sources);
  if (sources.length === 0) throw new SafetensorsError('InvalidIndex', out, `no tensors to write from ${printable(layoutOf)}`);
  await writeCheckpointFolder(out, {
    shards,
    ...(layout.sharded ? { index: { file: SHARD_INDEX, metadata: indexMetadata } } : {}),
    copy: companionFiles(layout.folder),
    ...(opts.files ? { files: opts.files } : {}),
    metadata: { format: 'pt', ...opts.metadata },
    inputs,
    alsoReads: opts.alsoReads,
    signal: opts.signal,
    onShard: opts.onShard,
  });
  return 'folder';
}
