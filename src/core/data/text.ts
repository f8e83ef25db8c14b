/**
 * Raw text for language-model evaluation, streamed so memory stays bounded whatever the file:
 * - `.txt`: the whole file is one text, handed out in pieces of whole lines (about 1 MiB each;
 *   a line longer than 16 MiB is cut at its last space);
 * - `.jsonl`: one JSON object per line, its `"text"` string is one document (blank lines skipped).
 * The bytes must be UTF-8.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { DataError } from './errors';

/** Pieces of `.txt` are cut after a line break once this many characters are buffered. */
const PIECE_CHARS = 1024 * 1024;
/** A `.txt` line, or a `.jsonl` record, longer than this is cut (txt) or refused (jsonl). */
export const MAX_LINE_CHARS = 16 * 1024 * 1024;

export function isTextDataPath(p: string): boolean {
  return /\.(txt|jsonl)$/i.test(p);
}

/** Decoded UTF-8 chunks of a file (fatal on invalid bytes). */
async function* utf8Chunks(file: string): AsyncGenerator<string> {
  let st;
  try {
    st = await stat(file);
  } catch {
    throw new DataError('NotFound', `${file}: text data does not exist`, file);
  }
  if (!st.isFile()) throw new DataError('Unsupported', `${file}: text data is not a regular file`, file);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
  let offset = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      try {
        yield decoder.decode(chunk, { stream: true });
      } catch {
        throw new DataError('Corrupt', `${file}: not valid UTF-8 (near byte ${offset})`, file);
      }
      offset += chunk.length;
    }
    try {
      const rest = decoder.decode();
      if (rest) yield rest;
    } catch {
      throw new DataError('Corrupt', `${file}: not valid UTF-8 (the file ends inside a character)`, file);
    }
  } finally {
    stream.destroy();
  }
}

/** Pieces of a `.txt` file, each ending after a line break (the last may not), in order. */
export async function* textPieces(file: string): AsyncGenerator<string> {
  let buf = '';
  for await (const chunk of utf8Chunks(file)) {
    buf += chunk;
    while (buf.length >= PIECE_CHARS) {
      let cut = buf.lastIndexOf('\n') + 1;
      if (cut === 0) {
        if (buf.length < MAX_LINE_CHARS) break;
        const space = buf.lastIndexOf(' ') + 1;
        cut = space > 0 ? space : buf.length;
      }
      yield buf.slice(0, cut);
      buf = buf.slice(cut);
    }
  }
  if (buf.length > 0) yield buf;
}

/** The `"text"` of each record of a `.jsonl` file, in order. */
export async function* jsonlDocuments(file: string): AsyncGenerator<string> {
  let buf = '';
  let line = 0;
  const parse = (raw: string): string | undefined => {
    line++;
    const s = raw.trim();
    if (s === '') return undefined;
    let rec: unknown;
    try {
      rec = JSON.parse(s);
    } catch {
      throw new DataError('Corrupt', `${file}: line ${line} is not valid JSON`, file);
    }
    const text = typeof rec === 'object' && rec !== null && !Array.isArray(rec) ? (rec as Record<string, unknown>).text : undefined;
    if (typeof text !== 'string') throw new DataError('BadShape', `${file}: line ${line} has no "text" string field`, file);
    return text;
  };
  for await (const chunk of utf8Chunks(file)) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const doc = parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (doc !== undefined) yield doc;
    }
    if (buf.length > MAX_LINE_CHARS) throw new DataError('Unsupported', `${file}: line ${line + 1} is longer than ${MAX_LINE_CHARS} characters`, file);
  }
  const last = parse(buf);
  if (last !== undefined) yield last;
}
