/**
 * The reference library reads `shape` and `data_offsets` as serde `u64`/`usize`, which takes a
 * JSON integer only: `1.0`, `1e0` and `-0` are refused ("invalid type: floating point"), while
 * JSON.parse makes them the number 1 (or 0) and the difference is lost. This pass finds such
 * literals in header text JSON.parse has already accepted. The header holds numbers nowhere
 * else (metadata values are strings, checked by value), so such a literal is refused wherever it is.
 */
import { closingQuote } from './duplicate-keys';

export interface NonIntegerLiteral {
  /** The literal as written, e.g. `1.0`. */
  readonly literal: string;
  /** The top-level key it sits under (the tensor), when there is one. */
  readonly tensor: string | undefined;
  /** The key inside the tensor's entry (`shape`, `data_offsets`), when there is one. */
  readonly field: string | undefined;
}

const NUMBER_START = /[-0-9]/;
const NUMBER_CHARS = /[-+0-9.eE]/;
/** An integer literal (negative ones are refused later, by value, with the other range checks). */
const INTEGER = /^-?(0|[1-9][0-9]*)$/;

interface Frame {
  readonly object: boolean;
  /** The last key read in this object. */
  key: string | undefined;
}

/**
 * A safe integer value written as a fraction, with an exponent or as -0 (`1.0`, `1e0`, `-0`):
 * JSON.parse hides these. Other numbers are refused later by value (1.5 is not an integer,
 * 1e300 is too large, -1 is negative).
 */
function looksInteger(literal: string): boolean {
  if (INTEGER.test(literal) && literal !== '-0') return false;
  return Number.isSafeInteger(Number(literal));
}

/** The first number in `text` (valid JSON) that JSON.parse reads as an integer but serde's u64 refuses; undefined when none is. */
export function findNonIntegerLiteral(text: string): NonIntegerLiteral | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '"') {
      const j = closingQuote(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top?.object) {
        const inner = text.slice(i + 1, j);
        top.key = inner.includes('\\') ? (JSON.parse(`"${inner}"`) as string) : inner;
      }
      expectKey = false;
      i = j + 1;
      continue;
    }
    if (NUMBER_START.test(c)) {
      let j = i + 1;
      while (j < text.length && NUMBER_CHARS.test(text[j])) j++;
      const literal = text.slice(i, j);
      if (looksInteger(literal)) return { literal, tensor: stack[0]?.key, field: stack[1]?.object ? stack[1].key : undefined };
      i = j;
      continue;
    }
    if (c === '{' || c === '[') {
      stack.push({ object: c === '{', key: undefined });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectKey = stack[stack.length - 1]?.object === true;
    }
    i++;
  }
  return undefined;
}
