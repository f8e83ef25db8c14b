/**
 * Whether an evaluation data set suits a model, decided from file names and headers before any
 * work starts: classifiers (MLP, VGG, ResNet) read labelled examples, Hugging Face language
 * models read token ids or text. A mismatch is named in one line with its real cause, instead
 * of the loader's later complaint (a .npy of token ids given to a classifier: "no labels").
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { checkpointName } from '../checkpointName';
import { openRegularFile } from '../files';
import { ZipArchive } from '../formats/zipArchive';
import { lmCheckpointFamily } from '../families/lmCheckpoint';
import { openCheckpoint } from '../safetensors';
import { hasLabelledPair, labelsFileFor } from './dataset';
import { isTextDataPath } from './text';

/** `labelled`: examples with labels (classifiers); `tokens`: token ids; `text`: raw text (language models). */
export type DataKind = 'labelled' | 'tokens' | 'text';

export interface DataShape {
  readonly kind: DataKind;
  /** What it holds, for the message: "token ids (input_ids)", "x/y examples". */
  readonly what: string;
}

/** The kind of data at `p`, from its name and header; undefined when it cannot be told (the loader will say). */
export async function dataShape(p: string): Promise<DataShape | undefined> {
  let isDir: boolean;
  try {
    isDir = (await stat(p)).isDirectory();
  } catch {
    return undefined;
  }
  if (isDir) return { kind: 'labelled', what: 'a folder of IDX images and labels' };
  if (isTextDataPath(p)) return { kind: 'text', what: 'raw text' };
  if (/\.npy$/i.test(p)) {
    return labelsFileFor(p) ? { kind: 'labelled', what: `examples with labels in ${path.basename(labelsFileFor(p)!)}` } : { kind: 'tokens', what: 'an array without labels beside it (token ids)' };
  }
  let keys: Set<string>;
  try {
    if (/\.safetensors$/i.test(p)) {
      const ck = await openCheckpoint(p);
      try {
        keys = new Set(ck.tensors.map((t) => t.name));
      } finally {
        await ck.close();
      }
    } else if (/\.npz$/i.test(p)) {
      keys = await npzKeys(p);
    } else {
      return undefined;
    }
  } catch {
    return undefined;
  }
  if (hasLabelledPair(keys)) return { kind: 'labelled', what: 'labelled examples' };
  if (keys.has('input_ids')) return { kind: 'tokens', what: 'token ids (input_ids)' };
  return undefined;
}

/**
 * Why `dataPath` cannot evaluate `model` (a checkpoint file, index or folder), or undefined when
 * it can as far as names and headers tell. One line, naming both.
 */
export async function dataFitProblem(dataPath: string, model: string): Promise<string | undefined> {
  const shape = await dataShape(dataPath);
  if (!shape) return undefined;
  const data = path.basename(dataPath);
  const name = checkpointName(model);
  const lm = lmCheckpointFamily(model) !== undefined;
  if (!lm && shape.kind !== 'labelled') {
    return `${data} holds ${shape.what}, data for a language model, but ${name} is evaluated as a classifier (no config.json naming a language model beside it): pick labelled examples (x/y or images/labels, an IDX folder)`;
  }
  if (lm && shape.kind === 'labelled') {
    return `${data} holds ${shape.what} for a classifier, but ${name} is a language model (config.json beside it): pick token ids (.npy/.npz/.safetensors input_ids) or text (.txt/.jsonl)`;
  }
  return undefined;
}

/** The data a run uses unless another is picked, and why configured data is not used. */
export interface DefaultData {
  /** The data, when there is some and it suits the model. */
  readonly path?: string;
  /** Where it comes from: given by the caller, remembered for the model, or the setting. */
  readonly source?: 'given' | 'remembered' | 'setting';
  /** Why the given, remembered or configured data is not used: it does not suit the model (one line). */
  readonly problem?: string;
}

/**
 * The data of a run before any pick: `given` (`null`: none), else the choice `remembered` for the
 * model (`null`: "no data" was chosen), else the `setting`; kept only when it suits `evaluated`.
 */
export async function defaultDataFor(o: { evaluated: string; given?: string | null; remembered?: string | null; setting?: string }): Promise<DefaultData> {
  if (o.given === null) return {};
  const source = o.given !== undefined ? 'given' : o.remembered !== undefined ? 'remembered' : o.setting !== undefined ? 'setting' : undefined;
  const found = o.given ?? (o.remembered === undefined ? o.setting : o.remembered);
  if (!source || !found) return source ? { source } : {};
  const problem = await dataFitProblem(found, o.evaluated);
  return problem ? { source, problem } : { path: found, source };
}

/**
 * The array names of an `.npz`, from its central directory alone: this runs on the extension
 * host's thread before every run, so it never reads the archive (up to 2 GB) whole.
 */
async function npzKeys(file: string): Promise<Set<string>> {
  const { handle, size } = await openRegularFile(file, 'data file');
  try {
    const zip = await ZipArchive.open(file, handle, size);
    return new Set([...zip.members.keys()].map((k) => k.replace(/\.npy$/, '')));
  } finally {
    await handle.close();
  }
}
