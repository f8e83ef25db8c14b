/**
 * Raw text for language-model evaluation, streamed so memory stays bounded whatever the file:
 * - `.txt`: the whole file is one text, handed out in pieces of whole lines (about 1 MiB each;
 *   a line longer than 16 MiB is cut at its last space);
 * - `.jsonl`: one JSON object per line, its `"text"` string is one document (blank lines skipped).
 * The bytes must be UTF-8.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
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
  // The fatal decoder only checks the bytes: its streamed output is two-byte text, on which a
  // regular expression over a long word overflows V8's stack; StringDecoder gives compact text.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const text = new StringDecoder('utf8');
  const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
  let offset = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        throw new DataError('Corrupt', `${file}: not valid UTF-8 (near byte ${offset})`, file);
      }
      // A BOM at the start is not text (TextDecoder drops it; StringDecoder keeps it).
      const piece = text.write(offset === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? chunk.subarray(3) : chunk);
      offset += chunk.length;
      if (piece) yield piece;
    }
    try {
      decoder.decode();
    } catch {
      throw new DataError('Corrupt', `${file}: not valid UTF-8 (the file ends inside a character)`, file);
    }
    const rest = text.end();
    if (rest) yield rest;
  } finally {
    stream.destroy();
  }
}

/**
 * Pieces of a `.txt` file, each ending after a line break (the last may not), in order. Each
 * piece is one flat string: a string grown chunk by chunk (`+=`) is a rope, and a regular
 * expression over a rope of a long line overflows V8's stack (the tokenizers' pre-tokenizers
 * run one on every piece).
 */
export async function* textPieces(file: string): AsyncGenerator<string> {
  let parts: string[] = [];
  let length = 0;
  for await (const chunk of utf8Chunks(file)) {
    parts.push(chunk);
    length += chunk.length;
    if (length < PIECE_CHARS) continue;
    let buf = parts.join('');
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
    parts = [buf];
    length = buf.length;
  }
  const rest = parts.join('');
  if (rest.length > 0) yield rest;
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
