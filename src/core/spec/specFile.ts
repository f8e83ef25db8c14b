/**
 * The spec file (the paper's `axes_to_perm`, Git Re-Basin section 3 / its weight_matching.py):
 *
 *   { "axes": { "<tensor>": ["<perm>" | null | <block axis>, ...one entry per axis] } }
 *
 * A block axis (attention heads, README.md "Block axes"):
 *   { "split": [heads, head_dim], "perms": ["<heads perm>", "<inner perm>" | null] }
 *   { "concat": [<block axis>, ...] }   (parts laid end to end, e.g. GPT-2's q|k|v)
 *
 * Sizes come from the tensors. Optional keys: "perms" (name -> size, checked when present,
 * as `rebasin spec` writes it), "family" and "notes" (informational). Tensors the file does
 * not list are left unpermuted.
 */
import type { AxisEntry, BlockAxis, BlockPart, PermSpec } from '../checkpoint';
import { blockAxisToJson, isBlockAxis } from '../blockAxis';
import { SpecError } from './errors';
import { buildPermSpec, formatShape, naturalCompare, type TensorShape } from './shapes';

export interface SpecFile {
  readonly axes: Readonly<Record<string, readonly AxisEntry[]>>;
  readonly perms?: Readonly<Record<string, number>>;
  readonly family?: string;
  readonly notes?: readonly string[];
}

const KNOWN_KEYS = new Set(['axes', 'perms', 'family', 'notes']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parsePart(v: unknown, where: string, file: string, tensor: string): BlockPart {
  const bad = (why: string): never => {
    throw new SpecError('BadStructure', `${file}: ${where} of tensor \`${tensor}\`: ${why}`, file, tensor);
  };
  if (!isPlainObject(v)) return bad(`a block must be an object with \`split\` and \`perms\`, got ${typeOf(v)}`);
  for (const key of Object.keys(v)) if (key !== 'split' && key !== 'perms') bad(`unknown key \`${key}\` (expected \`split\` and \`perms\`, or \`concat\`)`);
  const split = v.split;
  if (!Array.isArray(split) || split.length < 2 || !split.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    bad('`split` must be an array of at least two positive integers (blocks, then the positions inside a block)');
  }
  const perms = v.perms;
  if (!Array.isArray(perms) || !perms.every((p) => p === null || (typeof p === 'string' && p.length > 0))) {
    bad('`perms` must be an array of permutation names or null, one per level of `split`');
  }
  return { split: split as number[], perms: perms as (string | null)[] };
}

function parseBlockAxis(v: Record<string, unknown>, axis: number, file: string, tensor: string): BlockAxis {
  if ('concat' in v) {
    if (Object.keys(v).length !== 1) throw new SpecError('BadStructure', `${file}: axis ${axis} of tensor \`${tensor}\`: \`concat\` cannot be combined with other keys`, file, tensor);
    if (!Array.isArray(v.concat) || v.concat.length === 0) {
      throw new SpecError('BadStructure', `${file}: axis ${axis} of tensor \`${tensor}\`: \`concat\` must be a non-empty array of blocks`, file, tensor);
    }
    return { parts: v.concat.map((p: unknown, k) => parsePart(p, `axis ${axis} part ${k}`, file, tensor)) };
  }
  return { parts: [parsePart(v, `axis ${axis}`, file, tensor)] };
}

/** Parses and checks the structure of a spec file's text; `file` names it in errors. */
export function parseSpecFile(text: string, file: string): SpecFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new SpecError('BadJson', `${file}: not valid json (${why.toLowerCase()})`, file);
  }
  if (!isPlainObject(json)) {
    throw new SpecError('BadStructure', `${file}: expected an object with an \`axes\` object, got ${typeOf(json)}`, file);
  }
  for (const key of Object.keys(json)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new SpecError('BadStructure', `${file}: unknown key \`${key}\` (expected \`axes\`, and optionally \`perms\`, \`family\`, \`notes\`)`, file);
    }
  }
  const axesJson = json.axes;
  if (!isPlainObject(axesJson)) {
    throw new SpecError('BadStructure', `${file}: \`axes\` must be an object of tensor name -> array of permutation names or null, got ${typeOf(axesJson)}`, file);
  }
  const axes: Record<string, AxisEntry[]> = Object.fromEntries(
    Object.entries(axesJson).map(([tensor, entry]) => {
      if (!Array.isArray(entry)) {
        throw new SpecError('BadStructure', `${file}: \`axes\` entry of tensor \`${tensor}\` must be an array (one item per axis), got ${typeOf(entry)}`, file, tensor);
      }
      const perms = entry.map((item: unknown, axis): AxisEntry => {
        if (item === null) return null;
        if (isPlainObject(item)) return parseBlockAxis(item, axis, file, tensor);
        if (typeof item !== 'string' || item.length === 0) {
          throw new SpecError(
            'BadStructure',
            `${file}: axis ${axis} of tensor \`${tensor}\` must be a permutation name (non-empty string), a block axis ({"split", "perms"}) or null, got ${typeOf(item)}`,
            file,
            tensor,
          );
        }
        return item;
      });
      return [tensor, perms];
    }),
  );
  const out: { axes: typeof axes; perms?: Record<string, number>; family?: string; notes?: string[] } = { axes };
  if (json.perms !== undefined) {
    if (!isPlainObject(json.perms)) throw new SpecError('BadStructure', `${file}: \`perms\` must be an object of name -> size, got ${typeOf(json.perms)}`, file);
    const perms: Record<string, number> = Object.fromEntries(
      Object.entries(json.perms).map(([name, size]) => {
        if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
          throw new SpecError('BadStructure', `${file}: size of permutation \`${name}\` must be a positive integer`, file);
        }
        return [name, size];
      }),
    );
    out.perms = perms;
  }
  if (json.family !== undefined) {
    if (typeof json.family !== 'string') throw new SpecError('BadStructure', `${file}: \`family\` must be a string`, file);
    out.family = json.family;
  }
  if (json.notes !== undefined) {
    if (!Array.isArray(json.notes) || !json.notes.every((n) => typeof n === 'string')) {
      throw new SpecError('BadStructure', `${file}: \`notes\` must be an array of strings`, file);
    }
    out.notes = json.notes as string[];
  }
  return out;
}

/**
 * First difference between two checkpoints' tensor lists (names, then shapes), in name order,
 * as a SpecError whose message names the first differing tensor; null when they agree.
 */
export function checkCompatible(
  a: readonly TensorShape[],
  b: readonly TensorShape[],
  nameA: string,
  nameB: string,
): SpecError | null {
  const mapA = new Map(a.map((t) => [t.name, t.shape]));
  const mapB = new Map(b.map((t) => [t.name, t.shape]));
  const names = [...new Set([...mapA.keys(), ...mapB.keys()])].sort(naturalCompare);
  for (const name of names) {
    const sa = mapA.get(name);
    const sb = mapB.get(name);
    if (!sb) return new SpecError('NameMismatch', `${nameB}: tensor \`${name}\` is missing but ${nameA} has it`, nameB, name);
    if (!sa) return new SpecError('NameMismatch', `${nameB}: tensor \`${name}\` is not in ${nameA}`, nameB, name);
    if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i])) {
      return new SpecError('ShapeMismatch', `${nameB}: tensor \`${name}\` has shape ${formatShape(sb)} but ${nameA} has ${formatShape(sa)}`, nameB, name);
    }
  }
  return null;
}

/**
 * Checks a parsed spec file against checkpoint A (and B when given) and resolves it:
 * every listed tensor exists with that rank, each permutation has one size on all its axes
 * (and the declared one, if `perms` is given), A and B agree. `source` is the spec file's name;
 * `names` label A and B in messages.
 */
export function resolveSpec(
  file: SpecFile,
  a: readonly TensorShape[],
  b: readonly TensorShape[] | undefined,
  source: string,
  names: { readonly a: string; readonly b: string } = { a: 'checkpoint a', b: 'checkpoint b' },
): PermSpec {
  if (b) {
    const diff = checkCompatible(a, b, names.a, names.b);
    if (diff) throw diff;
  }
  const present = new Set(a.map((t) => t.name));
  const missing = Object.keys(file.axes).filter((t) => !present.has(t));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).map((t) => `\`${t}\``).join(', ');
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
    throw new SpecError(
      'MissingTensor',
      `${source}: ${missing.length === 1 ? 'tensor' : 'tensors'} ${shown}${more} named by the spec ${missing.length === 1 ? 'is' : 'are'} not in ${names.a}`,
      source,
      missing[0],
    );
  }
  const axes: Record<string, AxisEntry[]> = Object.fromEntries(Object.entries(file.axes).map(([t, entry]) => [t, [...entry]]));
  const spec = buildPermSpec(axes, a, source);
  const sizes = new Map(Object.entries(spec.perms));
  if (file.perms) {
    for (const [perm, size] of Object.entries(file.perms)) {
      const actual = sizes.get(perm);
      if (actual === undefined) {
        throw new SpecError('SizeConflict', `${source}: permutation \`${perm}\` is declared in \`perms\` but acts on no axis`, source);
      }
      if (actual !== size) {
        throw new SpecError('SizeConflict', `${source}: permutation \`${perm}\` is declared with size ${size} but its axes have size ${actual}`, source);
      }
    }
  }
  return spec;
}

/** The spec file form of a resolved spec (what `rebasin spec` prints), tensors in name order. */
export function specToFile(spec: PermSpec, extra: { family?: string; notes?: readonly string[] } = {}): SpecFile {
  const axes = Object.fromEntries(Object.entries(spec.axes).sort(([x], [y]) => naturalCompare(x, y)));
  const perms = Object.fromEntries(Object.entries(spec.perms).sort(([x], [y]) => naturalCompare(x, y)));
  return { ...(extra.family ? { family: extra.family } : {}), ...(extra.notes ? { notes: extra.notes } : {}), perms, axes };
}

/** An all-null spec file for the given tensors: the starting point of a hand-written spec. */
export function skeletonSpecFile(tensors: readonly TensorShape[]): SpecFile {
  const sorted = [...tensors].sort((x, y) => naturalCompare(x.name, y.name));
  return { axes: Object.fromEntries(sorted.map((t) => [t.name, t.shape.map(() => null)])) };
}

/** Pretty JSON with one line per tensor / permutation, so a person can edit it. */
export function formatSpecFile(file: SpecFile): string {
  const lines: string[] = ['{'];
  const blocks: string[] = [];
  if (file.family !== undefined) blocks.push(`  "family": ${JSON.stringify(file.family)}`);
  if (file.notes !== undefined) {
    blocks.push(file.notes.length ? `  "notes": [\n${file.notes.map((n) => `    ${JSON.stringify(n)}`).join(',\n')}\n  ]` : '  "notes": []');
  }
  if (file.perms !== undefined) {
    const entries = Object.entries(file.perms).map(([k, v]) => `    ${JSON.stringify(k)}: ${v}`);
    blocks.push(entries.length ? `  "perms": {\n${entries.join(',\n')}\n  }` : '  "perms": {}');
  }
  const axes = Object.entries(file.axes).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v.map((e) => (isBlockAxis(e) ? blockAxisToJson(e) : e)))}`);
  blocks.push(axes.length ? `  "axes": {\n${axes.join(',\n')}\n  }` : '  "axes": {}');
  lines.push(blocks.join(',\n'), '}');
  return lines.join('\n') + '\n';
}
