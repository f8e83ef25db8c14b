/**
 * Small shared pieces of the spec area: the tensor view it needs (name and shape only,
 * so a header is enough), natural name order, and turning an axes table into a PermSpec
 * with each permutation's size taken from the axes it acts on.
 */
import type { PermSpec } from '../checkpoint';
import { SpecError } from './errors';

/** What spec code needs of a tensor: a `TensorInfo` or a builder's entry both fit. */
export interface TensorShape {
  readonly name: string;
  readonly shape: readonly number[];
}

export type AxesTable = Record<string, (string | null)[]>;

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Compares names segment by segment, digits as numbers: `layers.2` < `layers.10`, `fc2` < `fc10`. */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i];
    const y = rb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) return Number(x) - Number(y) || x.length - y.length;
    return x < y ? -1 : 1;
  }
  return ra.length - rb.length;
}

/**
 * Builds the PermSpec of an axes table: every permutation's size is the size of the axes it
 * acts on, which must all agree. `source` starts every message ("spec.json", "inferred spec").
 */
export function buildPermSpec(axes: Readonly<AxesTable>, tensors: readonly TensorShape[], source: string): PermSpec {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  // Maps, not object literals: names such as `constructor` or `__proto__` are ordinary here.
  const perms = new Map<string, number>();
  const firstUse = new Map<string, string>();
  const table = new Map(Object.entries(axes));
  for (const [tensor, entry] of table) {
    const info = byName.get(tensor);
    if (!info) throw new SpecError('MissingTensor', `${source}: tensor \`${tensor}\` is not in the checkpoint`, source, tensor);
    if (entry.length !== info.shape.length) {
      throw new SpecError(
        'RankMismatch',
        `${source}: tensor \`${tensor}\` has ${info.shape.length} axes ${formatShape(info.shape)} but the spec lists ${entry.length}`,
        source,
        tensor,
      );
    }
    entry.forEach((perm, axis) => {
      if (perm === null) return;
      const size = info.shape[axis];
      const known = perms.get(perm);
      if (known === undefined) {
        perms.set(perm, size);
        firstUse.set(perm, `\`${tensor}\` axis ${axis}`);
      } else if (known !== size) {
        throw new SpecError(
          'SizeConflict',
          `${source}: permutation \`${perm}\` acts on \`${tensor}\` axis ${axis} of size ${size} but on ${firstUse.get(perm)} of size ${known}`,
          source,
          tensor,
        );
      }
    });
  }
  // Tensors the table leaves out are not permuted: listing them keeps every consumer simple.
  const full = [...tensors]
    .sort((x, y) => naturalCompare(x.name, y.name))
    .map((t): [string, readonly (string | null)[]] => [t.name, [...(table.get(t.name) ?? t.shape.map(() => null))]]);
  return { perms: Object.fromEntries(perms), axes: Object.fromEntries(full) };
}

/** Permutation name -> every (tensor, axis) it acts on: the paper's `perm_to_axes`. */
export function axesOfPerms(spec: PermSpec): Map<string, { tensor: string; axis: number }[]> {
  const out = new Map<string, { tensor: string; axis: number }[]>();
  for (const perm of Object.keys(spec.perms)) out.set(perm, []);
  for (const [tensor, entry] of Object.entries(spec.axes)) {
    entry.forEach((perm, axis) => {
      if (perm !== null) out.get(perm)?.push({ tensor, axis });
    });
  }
  return out;
}
