/**
 * Raw text to token windows with a checkpoint's `tokenizer.json`, through
 * `@huggingface/tokenizers` (pure JS: the same normalizers, pre-tokenizers, models and
 * post-processors as the Rust library). The token stream is cut into consecutive windows of
 * `seqLen` tokens; the last partial window is dropped.
 * - `.txt`: one text, tokenized in pieces of whole lines (text.ts) without special tokens;
 * - `.jsonl`: each record's "text" tokenized on its own with the tokenizer's special tokens
 *   (its post-processor: e.g. BERT's [CLS] … [SEP], Llama's <s>; GPT-2's adds none), the
 *   documents following one another in the stream.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputFileError, MAX_TOKENIZER_JSON_BYTES, readJsonObject } from '../files';
import { formatBytes } from '../../../shared/bytes';
import { DataError } from './errors';
import { jsonlDocuments, textPieces } from './text';
import { MAX_TOKENS, type TokenArray } from './tokensArrays';

export interface TextTokenizer {
  /** The tokenizer.json read. */
  readonly source: string;
  encode(text: string, specialTokens: boolean): number[];
  /** Id of the mask token ([MASK] or <mask>), when the tokenizer has one. */
  readonly maskId?: number;
  /** Ids of the tokenizer's special tokens ([CLS], [SEP], <|endoftext|>, ...). */
  readonly specialIds: ReadonlySet<number>;
}

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  try {
    return await readJsonObject(file, MAX_TOKENIZER_JSON_BYTES, what);
  } catch (e) {
    if (!(e instanceof InputFileError)) throw e;
    const kind = e.kind === 'Io' ? 'NotFound' : e.kind === 'NotJson' ? 'Corrupt' : 'Unsupported';
    throw new DataError(kind, `${file}: ${e.detail}`, file);
  }
}

/** Loads `tokenizer.json` (and `tokenizer_config.json` beside it when present). */
export async function loadTokenizer(file: string): Promise<TextTokenizer> {
  const json = await readJson(file, 'tokenizer.json');
  const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config = existsSync(configFile) ? await readJson(configFile, 'tokenizer_config.json') : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new DataError('Unsupported', `${file}: the tokenizer cannot be built (${(e as Error).message})`, file);
  }
  const added = [...tok.get_added_tokens_decoder().entries()];
  const maskId = added.find(([, t]) => t.content === '[MASK]' || t.content === '<mask>')?.[0];
  const specialIds = new Set(added.filter(([, t]) => t.special).map(([id]) => id));
  return {
    source: file,
    encode: (text, specialTokens) => tok.encode(text, { add_special_tokens: specialTokens }).ids,
    ...(maskId !== undefined ? { maskId } : {}),
    specialIds,
  };
}

export interface TextWindows extends TokenArray {
  /** Tokens the text gave (up to where reading stopped). */
  readonly tokens: number;
}

/**
 * Tokenizes `file` (.txt or .jsonl) into windows [n, seqLen]; stops reading once `limit`
 * windows are full (or the token cap is reached, which without a limit is an error). Windows
 * are held twice at the end (the list and the array handed out), 8 bytes a token, which must
 * fit `budget` when given.
 */
export async function tokenizeTextFile(file: string, tokenizer: TextTokenizer, seqLen: number, limit?: number, budget?: number): Promise<TextWindows> {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new DataError('BadShape', `${file}: sequence length must be an integer of at least 2, got ${seqLen}`, file);
  const byBudget = budget !== undefined ? Math.floor(budget / (8 * seqLen)) : Infinity;
  const cap = Math.min(Math.floor(MAX_TOKENS / seqLen), byBudget);
  const want = limit !== undefined && limit > 0 ? limit : undefined;
  const overBudget = (windows: number): DataError =>
    new DataError('OverBudget', `${file}: ${windows} windows of ${seqLen} tokens need ${formatBytes(windows * seqLen * 8)}, over the memory budget of ${formatBytes(budget ?? 0)}: give a limit on the number of sequences`, file);
  if (want !== undefined && want > byBudget) throw overBudget(want);
  if (want !== undefined && want > cap) throw new DataError('Unsupported', `${file}: ${want} windows of ${seqLen} tokens is more than the ${MAX_TOKENS} token ids read at once`, file);
  const windows: Int32Array[] = [];
  let cur = new Int32Array(seqLen);
  let fill = 0;
  let tokens = 0;
  const jsonl = /\.jsonl$/i.test(file);
  const docs = jsonl ? jsonlDocuments(file) : textPieces(file);
  let piece = 0;
  outer: for await (const doc of docs) {
    piece++;
    let ids: number[];
    try {
      ids = tokenizer.encode(doc, jsonl);
    } catch (e) {
      // The tokenizer's own limits (a regular expression's stack on a huge word): one line naming the file.
      const what = jsonl ? `record ${piece}` : `the text after ${tokens} tokens`;
      throw new DataError('Unsupported', `${file}: the tokenizer cannot read ${what} (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`, file);
    }
    tokens += ids.length;
    for (const id of ids) {
      cur[fill++] = id;
      if (fill === seqLen) {
        windows.push(cur);
        cur = new Int32Array(seqLen);
        fill = 0;
        if (want !== undefined && windows.length === want) break outer;
        if (windows.length > byBudget) throw overBudget(windows.length);
        if (windows.length > cap) {
          throw new DataError('Unsupported', `${file}: the text gives more than ${cap} windows of ${seqLen} tokens (${MAX_TOKENS} token ids): give a limit on the number of sequences`, file);
        }
      }
    }
  }
  if (windows.length === 0) {
    throw new DataError('BadShape', `${file}: the text gives ${tokens} tokens, fewer than one window of ${seqLen}: use a shorter sequence length or more text`, file);
  }
  const ids = new Int32Array(windows.length * seqLen);
  windows.forEach((w, i) => ids.set(w, i * seqLen));
  return { ids, n: windows.length, t: seqLen, total: windows.length, tokens };
}
