/**
 * JSON.parse keeps the last of two equal keys without a word, while the reference library
 * refuses such headers (serde reports the duplicate). This pass finds them in text that
 * JSON.parse has already accepted, so it only needs to tell keys from values.
 * Iterative (explicit stack), so deeply nested input cannot overflow the call stack.
 */

export interface DuplicateKey {
  readonly key: string;
  /** Key of the object holding the duplicate (undefined at top level). */
  readonly parent: string | undefined;
  readonly depth: number;
}

interface Frame {
  /** Keys seen so far, or null for an array. */
  readonly keys: Set<string> | null;
  readonly name: string | undefined;
  lastKey: string | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index of the quote closing the string that opens at `i`: the next quote not preceded by an odd run of backslashes. */
export function closingQuote(text: string, i: number): number {
  let j = text.indexOf('"', i + 1);
  for (;;) {
    if (j < 0) return text.length;
    let slashes = 0;
    while (text.charCodeAt(j - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

/** Returns the first repeated key of any object in `text` (valid JSON), or undefined. */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let prev = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const j = closingQuote(text, i);
      const top = stack[stack.length - 1];
      const isKey = top !== undefined && top.keys !== null && (prev === 0x7b /* { */ || prev === 0x2c); /* , */
      if (isKey && top.keys !== null) {
        const inner = text.slice(i + 1, j);
        const key = inner.includes('\\') ? (JSON.parse(`"${inner}"`) as string) : inner;
        if (top.keys.has(key)) return { key, parent: top.name, depth: stack.length };
        top.keys.add(key);
        top.lastKey = key;
      }
      prev = QUOTE;
      i = j + 1;
      continue;
    }
    switch (c) {
      case 0x7b: // {
      case 0x5b: // [
        stack.push({ keys: c === 0x7b ? new Set() : null, name: stack[stack.length - 1]?.lastKey, lastKey: undefined });
        prev = c;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        prev = c;
        break;
      case 0x2c: // ,
      case 0x3a: // :
        prev = c;
        break;
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
        break;
      default:
        prev = 1; // part of a number or literal
    }
    i++;
  }
  return undefined;
}
