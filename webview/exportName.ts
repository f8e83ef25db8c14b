/**
 * Names of what the panel exports: labels that tell model A from model B (two Hugging Face
 * checkpoints are both "model.safetensors": their folders tell them apart), short file names
 * that keep the part where the two names differ, and the line saying which data a curve is over.
 * Pure (no DOM): unit-tested on its own.
 */
import { fmt, slug } from './format';
import type { DataProvenance, ModelRef } from './protocol';

/** Model file name without `.safetensors` / `.safetensors.index.json`. */
export function stem(name: string): string {
  return name.replace(/\.safetensors\.index\.json$/i, '').replace(/\.safetensors$/i, '');
}

/**
 * Display labels of A and B that differ: their stems, or, when the stems are the same, with as
 * many parent folders as it takes ("run1/model" and "run2/model").
 */
export function distinctLabels(a: ModelRef, b: ModelRef): [string, string] {
  const sa = stem(a.name);
  const sb = stem(b.name);
  if (sa !== sb) return [sa, sb];
  const pa = a.path.split(/[\\/]/).filter(Boolean);
  const pb = b.path.split(/[\\/]/).filter(Boolean);
  // Folders from the file upwards, until a pair differs (at most three levels).
  for (let up = 2; up <= 4; up++) {
    const fa = pa.slice(-up, -1);
    const fb = pb.slice(-up, -1);
    if (fa.length === 0 || fb.length === 0) break;
    if (fa.join('/') !== fb.join('/')) return [[...fa, sa].join('/'), [...fb, sb].join('/')];
  }
  return [sa, sb];
}

/** Characters `x` and `y` share at the start, and at the end (not overlapping the start). */
function commonEnds(x: string, y: string): { prefix: number; suffix: number } {
  let prefix = 0;
  while (prefix < x.length && prefix < y.length && x[prefix] === y[prefix]) prefix++;
  let suffix = 0;
  while (suffix < x.length - prefix && suffix < y.length - prefix && x[x.length - 1 - suffix] === y[y.length - 1 - suffix]) suffix++;
  return { prefix, suffix };
}

/** At most `max` characters of `s` around [from, to) (the part that tells it apart), trimmed of separators. */
function clipAround(s: string, from: number, to: number, max: number): string {
  if (s.length <= max) return s;
  const core = Math.max(1, Math.min(max, to - from));
  const room = max - core;
  let left = Math.min(from, Math.ceil(room / 2));
  const right = Math.min(s.length - from - core, room - left);
  left = Math.min(from, room - right);
  return s.slice(from - left, from + core + right).replace(/^[_.-]+|[_.-]+$/g, '');
}

/** Slugs of A's and B's labels, each at most `max` characters, clipped around where they differ. */
export function distinctSlugs(a: ModelRef, b: ModelRef, max = 24): [string, string] {
  const [la, lb] = distinctLabels(a, b).map((l) => slug(l.replace(/[\\/]/g, '_')));
  const { prefix, suffix } = commonEnds(la, lb);
  return [clipAround(la, prefix, la.length - suffix, max), clipAround(lb, prefix, lb.length - suffix, max)];
}

/**
 * A short export file name: "<B>-to-<A>[-<group>]-<what>.<ext>" (at most 90 characters),
 * each model part keeping what tells the two apart.
 */
export function exportFileName(state: { a: ModelRef; b: ModelRef }, what: string, ext: string, group?: string): string {
  const [a, b] = distinctSlugs(state.a, state.b);
  const parts = [`${b}-to-${a}`];
  if (group) parts.push(slug(group).slice(0, 20));
  parts.push(slug(what).slice(0, 12));
  return `${parts.join('-')}.${ext}`;
}

/**
 * Which data a curve is over, one line: "mnist (test split, 10,000 examples)",
 * "tokens.npy (64 sequences of 128 tokens, 8,128 positions scored)".
 */
export function provenanceText(d: DataProvenance): string {
  const parts: string[] = [];
  if (d.sequences !== undefined) {
    parts.push(`${fmt(d.sequences)} sequence${d.sequences === 1 ? '' : 's'}${d.seqLen !== undefined ? ` of ${fmt(d.seqLen)} tokens` : ''}`);
    if (d.positions !== undefined) parts.push(`${fmt(d.positions)} positions scored`);
  } else {
    if (d.split) parts.push(`${d.split} split`);
    if (d.examples !== undefined) parts.push(`${fmt(d.examples)} example${d.examples === 1 ? '' : 's'}`);
  }
  return parts.length > 0 ? `${d.name} (${parts.join(', ')})` : d.name;
}
