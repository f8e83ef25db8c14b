/**
 * The spec file's schema (valibot, as every message and stored record: docs/architecture.md,
 * issue #12). The format itself is described in specFile.ts. Each schema's message is the rule
 * the user reads: a rule starting with "must" reads after the place it is about ("axis 1 of
 * tensor `fc.weight` must be ..."), any other text follows it after a colon. `specIssueLine`
 * turns the first issue's path into that place (the tensor, the axis, the block part).
 */
import * as v from 'valibot';
import type { AxisEntry, BlockAxis, BlockPart } from '../checkpoint';

/** "an array", "a number", "nothing": what the file holds instead, for "got ..." in messages. */
export function typeOf(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'nothing';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? 'an object' : `a ${typeof x}`;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A JSON object (valibot's object/record schemas also take arrays); `rule` gets what was found. */
const plainObject = (rule: (found: string) => string) =>
  v.custom<Record<string, unknown>>(isPlainObject, (issue) => rule(typeOf(issue.input)));

/**
 * A JSON object of name -> value, every name kept. valibot's record skips `__proto__`,
 * `prototype` and `constructor` (prototype safety), which would silently drop a tensor or
 * permutation of that name; a Map keeps them, and Object.fromEntries makes own properties.
 * Issues' path steps carry the name, as a record's would.
 */
function dictionary<T>(rule: (found: string) => string, value: v.GenericSchema<unknown, T>) {
  return v.pipe(
    plainObject(rule),
    v.transform((o) => new Map(Object.entries(o))),
    v.map(v.string(), value),
    v.transform((m): Readonly<Record<string, T>> => Object.fromEntries(m)),
  );
}

/** A strict object's message: an unknown key, or a missing one reported with that key's own rule. */
function strictMessage(rules: Readonly<Record<string, string>>, unknown: (key: string) => string) {
  return (issue: v.StrictObjectIssue): string => {
    const at = issue.path?.[0];
    const key = at && at.origin === 'key' && typeof at.key === 'string' ? at.key : undefined;
    if (key !== undefined && issue.expected === 'never') return unknown(key);
    if (key !== undefined && rules[key] !== undefined) return rules[key];
    return 'must be an object';
  };
}

const SPLIT_RULE = '`split` must be an array of at least two positive integers (blocks, then the positions inside a block)';
const PERMS_RULE = '`perms` must be an array of permutation names or null, one per level of `split`';

const splitSchema = v.pipe(
  v.array(v.pipe(v.number(SPLIT_RULE), v.integer(SPLIT_RULE), v.minValue(1, SPLIT_RULE)), SPLIT_RULE),
  v.minLength(2, SPLIT_RULE),
);
const levelPermsSchema = v.array(v.nullable(v.pipe(v.string(PERMS_RULE), v.minLength(1, PERMS_RULE))), PERMS_RULE);

/** One stretch of a block axis: { "split": [heads, head_dim], "perms": ["<heads perm>", "<inner perm>" | null] }. */
const blockPartSchema: v.GenericSchema<unknown, BlockPart> = v.pipe(
  plainObject((found) => `a block must be an object with \`split\` and \`perms\`, got ${found}`),
  v.strictObject(
    { split: splitSchema, perms: levelPermsSchema },
    strictMessage({ split: SPLIT_RULE, perms: PERMS_RULE }, (key) => `unknown key \`${key}\` (expected \`split\` and \`perms\`, or \`concat\`)`),
  ),
);

const CONCAT_RULE = '`concat` must be a non-empty array of blocks';

/** Parts laid end to end (GPT-2's q|k|v): { "concat": [<block>, ...] }. */
const concatSchema: v.GenericSchema<unknown, BlockAxis> = v.pipe(
  plainObject((found) => `a block axis must be an object, got ${found}`),
  // Before the entries, so `{"concat": [], "split": ...}` is reported as the mix it is.
  v.check((o) => Object.keys(o).length === 1, '`concat` cannot be combined with other keys'),
  v.strictObject(
    { concat: v.pipe(v.array(blockPartSchema, CONCAT_RULE), v.minLength(1, CONCAT_RULE)) },
    strictMessage({ concat: CONCAT_RULE }, () => '`concat` cannot be combined with other keys'),
  ),
  v.transform((o): BlockAxis => ({ parts: o.concat })),
);

const singleBlockSchema: v.GenericSchema<unknown, BlockAxis> = v.pipe(
  blockPartSchema,
  v.transform((part): BlockAxis => ({ parts: [part] })),
);

const AXIS_RULE = (found: string) =>
  `must be a permutation name (non-empty string), a block axis ({"split", "perms"}) or null, got ${found}`;
const permNameSchema = v.pipe(
  v.string((issue) => AXIS_RULE(typeOf(issue.input))),
  v.minLength(1, (issue) => AXIS_RULE(typeOf(issue.input))),
);

/** One axis: a permutation name, null (not permuted), or a block axis (an object). */
const axisEntrySchema: v.GenericSchema<unknown, AxisEntry> = v.lazy((x): v.GenericSchema<unknown, AxisEntry> => {
  if (x === null) return v.null();
  if (isPlainObject(x)) return 'concat' in x ? concatSchema : singleBlockSchema;
  return permNameSchema;
});

const AXES_RULE = (found: string) => `\`axes\` must be an object of tensor name -> array of permutation names or null, got ${found}`;
const SIZE_RULE = 'must be a positive integer';
const NOTES_RULE = '`notes` must be an array of strings';

/** The whole file: { "axes": {...}, "perms"?: {...}, "family"?: "...", "notes"?: [...] }. */
export const SpecFileSchema = v.pipe(
  plainObject((found) => `expected an object with an \`axes\` object, got ${found}`),
  v.strictObject(
    {
      axes: dictionary(
        AXES_RULE,
        v.pipe(v.array(axisEntrySchema, (issue) => `must be an array (one item per axis), got ${typeOf(issue.input)}`), v.readonly()),
      ),
      /** Name -> size, as `rebasin spec` writes it; checked against the tensors by resolveSpec. */
      perms: v.optional(
        dictionary(
          (found) => `\`perms\` must be an object of name -> size, got ${found}`,
          v.pipe(v.number(SIZE_RULE), v.integer(SIZE_RULE), v.minValue(1, SIZE_RULE)),
        ),
      ),
      family: v.optional(v.string('`family` must be a string')),
      notes: v.optional(v.pipe(v.array(v.string(NOTES_RULE), NOTES_RULE), v.readonly())),
    },
    strictMessage(
      { axes: AXES_RULE(typeOf(undefined)) },
      (key) => `unknown key \`${key}\` (expected \`axes\`, and optionally \`perms\`, \`family\`, \`notes\`)`,
    ),
  ),
  v.readonly(),
);

export type SpecFile = v.InferOutput<typeof SpecFileSchema>;

/** Where in the file an issue is: "" (the top), "`axes` entry of tensor `t`", "axis 2 part 1 of tensor `t`"... */
function place(keys: readonly (string | number)[]): string {
  const [field, tensor, axis, inBlock, part] = keys;
  if (field === 'perms' && tensor !== undefined) return `size of permutation \`${String(tensor)}\``;
  if (field !== 'axes' || tensor === undefined) return '';
  if (axis === undefined) return `\`axes\` entry of tensor \`${String(tensor)}\``;
  const partOf = inBlock === 'concat' && part !== undefined ? ` part ${String(part)}` : '';
  return `axis ${String(axis)}${partOf} of tensor \`${String(tensor)}\``;
}

/**
 * The first issue as one line for a SpecError, and the tensor it is about. Only value steps of
 * the path make the place: a key step is the object's own issue (a missing or unknown key).
 */
export function specIssueLine(issue: v.BaseIssue<unknown>): { readonly line: string; readonly tensor?: string } {
  const keys: (string | number)[] = [];
  for (const step of issue.path ?? []) {
    if (step.origin !== 'value') break;
    if (typeof step.key === 'string' || typeof step.key === 'number') keys.push(step.key);
  }
  const where = place(keys);
  const line = where === '' ? issue.message : issue.message.startsWith('must') ? `${where} ${issue.message}` : `${where}: ${issue.message}`;
  const tensor = keys[0] === 'axes' && typeof keys[1] === 'string' ? keys[1] : undefined;
  return tensor === undefined ? { line } : { line, tensor };
}
