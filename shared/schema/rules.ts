/**
 * The building blocks of every message and stored-record schema (valibot; docs/architecture.md
 * says why valibot). Each block carries its rule in words ("must be an integer >= 1"), so an
 * invalid message is reported as one line naming the field and the rule, by `issueField` and
 * the per-boundary formatters (src/engine/validate.ts, webview/validate.ts). A rule starting
 * with "must" reads after the field's name; any other text is a whole sentence.
 * Pure: runs in Node (engine, extension host, CLI) and in the browser (webviews).
 */
import * as v from 'valibot';

export type Schema<T> = v.GenericSchema<unknown, T>;
type Entries = v.ObjectEntries;

/** What a schema (or a pipe starting with it) requires, for a missing field. */
function ruleOf(schema: unknown): string {
  const message = (schema as { message?: unknown }).message;
  return typeof message === 'string' ? message : 'must be an object';
}

/**
 * An object with these fields; other fields are dropped from the output (callers that keep
 * them validate and use the input, see src/engine/validate.ts). A missing required field is
 * reported with that field's own rule ("field `seed` must be a number").
 */
export function obj<const E extends Entries>(entries: E, rule = 'must be an object'): v.ObjectSchema<E, v.ErrorMessage<v.ObjectIssue>> {
  return v.object(entries, (issue) => {
    const at = issue.path?.[0];
    if (at && at.origin === 'key' && typeof at.key === 'string') return ruleOf(entries[at.key]);
    return rule;
  });
}

export const str = (): Schema<string> => v.string('must be a string');
const NON_EMPTY = 'must be a non-empty string';
export const nonEmpty = (): Schema<string> => v.pipe(v.string(NON_EMPTY), v.minLength(1, NON_EMPTY));
export const bool = (): Schema<boolean> => v.boolean('must be a boolean');

/** Any number, NaN and ±Infinity included (losses of a diverged interpolation are legitimately NaN). */
export const num = (): Schema<number> => v.custom<number>((x) => typeof x === 'number', 'must be a number');
export const finite = (): Schema<number> =>
  v.pipe(num(), v.check((x) => Number.isFinite(x), 'must be a finite number'));
export const positive = (rule = 'must be a positive number'): Schema<number> =>
  v.custom<number>((x) => typeof x === 'number' && Number.isFinite(x) && x > 0, rule);
export const int = (min: number): Schema<number> =>
  v.custom<number>((x) => Number.isSafeInteger(x) && (x as number) >= min, `must be an integer >= ${min}`);

export function oneOf<const T extends readonly string[]>(options: T): v.PicklistSchema<T, string> {
  return v.picklist(options, `must be one of ${options.join(', ')}`);
}

export const numArray = (): Schema<number[]> => v.array(num(), 'must be an array of numbers');
export const strArray = (): Schema<string[]> => v.array(str(), 'must be an array of strings');

/** Gather indices: a permutation of 0..n-1. */
export function isPermutation(x: unknown): x is number[] {
  if (!Array.isArray(x)) return false;
  const seen = new Uint8Array(x.length);
  for (const e of x as unknown[]) {
    if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e >= x.length || seen[e]) return false;
    seen[e] = 1;
  }
  return true;
}

/** Permutation name → gather indices; names the first entry that is not a permutation. */
export const permRecord = (): Schema<Record<string, number[]>> =>
  v.custom<Record<string, number[]>>(
    (x) => typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every(isPermutation),
    (issue) => {
      const x = issue.input;
      if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'must be an object';
      for (const [name, p] of Object.entries(x)) {
        if (!Array.isArray(p)) return `permutation \`${name}\` must be an array of indices`;
        if (!isPermutation(p)) return `permutation \`${name}\` is not a permutation of 0..${p.length - 1}`;
      }
      return 'must map names to permutations';
    },
  );

/** The first issue of a failed parse (parses stop at the first issue). */
export function firstIssue<T>(schema: Schema<T>, x: unknown): { ok: true; value: T } | { ok: false; issue: v.BaseIssue<unknown> } {
  const r = v.safeParse(schema, x, { abortEarly: true });
  return r.success ? { ok: true, value: r.output } : { ok: false, issue: r.issues[0] };
}

/**
 * The issue's field as path segments: object keys, with array indices joined to the key before
 * them (`['runs[0]', 'kind']`). Empty for the message itself.
 */
export function issueSegments(issue: v.BaseIssue<unknown>): string[] {
  const out: string[] = [];
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    if (typeof key === 'number') {
      if (out.length === 0) out.push(`[${key}]`);
      else out[out.length - 1] += `[${key}]`;
    } else out.push(String(key));
  }
  return out;
}

/** Whether the rule reads after a field's name ("must …", "has …", "is …"). */
export function isRule(message: string): boolean {
  return /^(must|has|is) /.test(message);
}

/** A schema's output made read-only all the way down (requests are never mutated); typed arrays stay as they are. */
export type DeepReadonly<T> = T extends ArrayBufferView
  ? T
  : T extends readonly (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;
