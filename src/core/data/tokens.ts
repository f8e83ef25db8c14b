/**
 * Token data for language models (`--data` / `rebasin.evaluationData` with a transformer):
 * - integer arrays [N, T] of token ids: `.npy`, `.npz` (`input_ids`), `.safetensors` (`input_ids`);
 * - raw text, `.txt` or `.jsonl` (a "text" field per line), tokenized with the checkpoint's
 *   `tokenizer.json` and cut into windows of `seqLen` tokens (default: the model's maximum
 *   position, at most 512).
 * Every id must be below the model's vocabulary size and T at most its maximum position.
 */
import { DataError } from './errors';
import { isTextDataPath } from './text';
import { loadTokenizer, tokenizeTextFile, type TextTokenizer, type TextWindows } from './textTokenize';
import { readNpyTokens, readNpzTokens, readSafetensorsTokens, type TokenArray } from './tokensArrays';

export interface TokenData {
  /** Token ids, row-major [n, t]. */
  readonly ids: Int32Array;
  /** Sequences. */
  readonly n: number;
  /** Tokens per sequence. */
  readonly t: number;
  /** The file read, for messages. */
  readonly source: string;
  /** One line on what was read, e.g. "24 windows of 64 tokens from 1604 tokens of text". */
  readonly description: string;
  /** The tokenizer used for raw text (its mask token and special ids serve the masked-LM loss). */
  readonly tokenizer?: TextTokenizer;
}

export interface TokenDataOptions {
  readonly path: string;
  /** tokenizer.json for raw text (the checkpoint's). */
  readonly tokenizer?: string;
  /** Window length for raw text; token arrays keep their own T. */
  readonly seqLen?: number;
  /** At most this many sequences (the first ones). */
  readonly limit?: number;
  /** Tokenizes raw text elsewhere (the engine: in a thread under a time budget); default inline. */
  readonly tokenizeText?: TextTokenizeFn;
}

/** Raw text file → windows of `seqLen` token ids with the tokenizer.json at `tokenizer` (`budget`: as tokenizeTextFile). */
export type TextTokenizeFn = (file: string, tokenizer: string, seqLen: number, limit?: number, budget?: number) => Promise<TextWindows>;

/** What the data is checked against: the model's vocabulary and positions, and where they come from. */
export interface TokenModelLimits {
  readonly vocab: number;
  readonly maxPositions: number;
  /** The config.json (or checkpoint) these come from, for messages. */
  readonly source: string;
}

/** Longest default window for raw text. */
export const DEFAULT_MAX_SEQ_LEN = 512;

export function isTokenArrayPath(p: string): boolean {
  return /\.(npy|npz|safetensors)$/i.test(p);
}

/** True for files `loadTokenData` reads (token arrays or raw text). */
export function isTokenDataPath(p: string): boolean {
  return isTokenArrayPath(p) || isTextDataPath(p);
}

/** Reads token data; `budget` (the memory budget, when given) is checked from the headers before the rows are read. */
export async function loadTokenData(opts: TokenDataOptions, model: TokenModelLimits, budget?: number): Promise<TokenData> {
  const p = opts.path;
  let arr: TokenArray;
  let description: string;
  let tokenizer: TextTokenizer | undefined;
  if (isTextDataPath(p)) {
    if (!opts.tokenizer) throw new DataError('NotFound', `${p}: raw text needs the checkpoint's tokenizer.json (none beside the checkpoint): give one, or token ids as .npy/.npz/.safetensors`, p);
    const seqLen = opts.seqLen ?? Math.min(model.maxPositions, DEFAULT_MAX_SEQ_LEN);
    if (seqLen > model.maxPositions) {
      throw new DataError('BadShape', `${p}: sequence length ${seqLen} exceeds the model's ${model.maxPositions} positions (${model.source})`, p);
    }
    tokenizer = await loadTokenizer(opts.tokenizer);
    const w = opts.tokenizeText ? await opts.tokenizeText(p, opts.tokenizer, seqLen, opts.limit, budget) : await tokenizeTextFile(p, tokenizer, seqLen, opts.limit, budget);
    arr = w;
    description = `${w.n} windows of ${w.t} tokens from ${w.tokens} tokens of text (${tokenizer.source})`;
  } else {
    if (/\.npy$/i.test(p)) arr = await readNpyTokens(p, opts.limit, budget);
    else if (/\.npz$/i.test(p)) arr = await readNpzTokens(p, opts.limit, budget);
    else if (/\.safetensors$/i.test(p)) arr = await readSafetensorsTokens(p, opts.limit, budget);
    else throw new DataError('Unsupported', `${p}: token data must be .npy, .npz or .safetensors token ids, or .txt/.jsonl text`, p);
    description = `${arr.n}${arr.n < arr.total ? ` of ${arr.total}` : ''} sequences of ${arr.t} tokens`;
  }
  validateTokens(arr, p, model);
  return { ids: arr.ids, n: arr.n, t: arr.t, source: p, description, ...(tokenizer ? { tokenizer } : {}) };
}

/** Ids below the vocabulary, T within the positions; otherwise one line naming the file. */
export function validateTokens(arr: Pick<TokenArray, 'ids' | 't'>, file: string, model: TokenModelLimits): void {
  if (arr.t > model.maxPositions) {
    throw new DataError('BadShape', `${file}: sequences of ${arr.t} tokens exceed the model's ${model.maxPositions} positions (${model.source})`, file);
  }
  for (let i = 0; i < arr.ids.length; i++) {
    const v = arr.ids[i];
    if (v >= model.vocab) {
      throw new DataError('LabelOutOfRange', `${file}: token id ${v} at sequence ${Math.floor(i / arr.t)}, position ${i % arr.t} is not below the vocabulary size ${model.vocab} (${model.source})`, file);
    }
  }
}
