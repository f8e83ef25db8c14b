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
import type { AxisEntry, PermSpec } from '../checkpoint';
import { blockAxisToJson, isBlockAxis } from '../blockAxis';
import * as v from 'valibot';
import { SpecError } from './errors';
import { SpecFileSchema, specIssueLine, type SpecFile } from './specFileSchema';
import { buildPermSpec, formatShape, naturalCompare, type TensorShape } from './shapes';

export type { SpecFile } from './specFileSchema';

/** Parses and checks the structure of a spec file's text (SpecFileSchema); `file` names it in errors. */
export function parseSpecFile(text: string, file: string): SpecFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new SpecError('BadJson', `${file}: not valid json (${why.toLowerCase()})`, file);
  }
  // The first issue only: one line, like every other error of this area.
  const result = v.safeParse(SpecFileSchema, json, { abortEarly: true });
  if (!result.success) {
    const { line, tensor } = specIssueLine(result.issues[0]);
    throw new SpecError('BadStructure', `${file}: ${line}`, file, tensor);
  }
  return result.output;
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
