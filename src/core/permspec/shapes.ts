/**
 * Small shared pieces of the spec area: the tensor view it needs (name and shape only,
 * so a header is enough), natural name order, and turning an axes table into a PermSpec
 * with each permutation's size taken from the axes it acts on.
 */
import type { AxisEntry, PermSpec } from '../checkpoint';
import { blockAxisSize, entryPermNames, isBlockAxis } from '../blockAxis';
import { SpecError } from './errors';

/** What spec code needs of a tensor: a `TensorInfo` or a builder's entry both fit. */
export interface TensorShape {
  readonly name: string;
  readonly shape: readonly number[];
}

export type AxesTable = Record<string, AxisEntry[]>;

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
  const blocks = new Map<string, number>();
  const firstUse = new Map<string, string>();
  const table = new Map(Object.entries(axes));
  const use = (perm: string, size: number, nBlocks: number, tensor: string, where: string): void => {
    const known = perms.get(perm);
    if (known === undefined) {
      perms.set(perm, size);
      blocks.set(perm, nBlocks);
      firstUse.set(perm, where);
      return;
    }
    const knownBlocks = blocks.get(perm)!;
    if (knownBlocks !== nBlocks && (knownBlocks > 1 || nBlocks > 1)) {
      const say = (b: number): string => (b > 1 ? `inside ${b} blocks` : 'as a whole');
      throw new SpecError(
        'SizeConflict',
        `${source}: permutation \`${perm}\` acts ${say(nBlocks)} on ${where} but ${say(knownBlocks)} on ${firstUse.get(perm)}`,
        source,
        tensor,
      );
    }
    if (known !== size) {
      throw new SpecError(
        'SizeConflict',
        `${source}: permutation \`${perm}\` acts on ${where} of size ${size} but on ${firstUse.get(perm)} of size ${known}`,
        source,
        tensor,
      );
    }
  };
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
      if (!isBlockAxis(perm)) {
        use(perm, size, 1, tensor, `\`${tensor}\` axis ${axis}`);
        return;
      }
      const covered = blockAxisSize(perm);
      if (covered !== size) {
        throw new SpecError('SizeConflict', `${source}: the blocks of \`${tensor}\` axis ${axis} cover ${covered} positions but the axis has ${size}`, source, tensor);
      }
      perm.parts.forEach((part, k) => {
        const where = `\`${tensor}\` axis ${axis}${perm.parts.length > 1 ? ` part ${k}` : ''}`;
        const bad = (why: string): never => {
          throw new SpecError('BadStructure', `${source}: block axis ${where}: ${why}`, source, tensor);
        };
        if (part.split.length < 2) bad('`split` needs at least two levels (blocks, then the positions inside a block)');
        if (part.perms.length !== part.split.length) bad(`\`perms\` has ${part.perms.length} entries but \`split\` has ${part.split.length} levels`);
        if (part.perms[0] === null) bad('the first level must name the permutation of the blocks');
        const named = part.perms.filter((p): p is string => p !== null);
        if (new Set(named).size !== named.length) bad('a permutation is named at two levels');
        part.perms.forEach((p, level) => {
          if (p === null) return;
          if (level === 0) use(p, part.split[0], 1, tensor, `${where} level 0`);
          else use(p, part.split[0] * part.split[level], part.split[0], tensor, `${where} level ${level}`);
        });
      });
    });
  }
  // Tensors the table leaves out are not permuted: listing them keeps every consumer simple.
  const full = [...tensors]
    .sort((x, y) => naturalCompare(x.name, y.name))
    .map((t): [string, readonly AxisEntry[]] => [t.name, [...(table.get(t.name) ?? t.shape.map(() => null))]]);
  const perBlock = [...blocks].filter(([, n]) => n > 1);
  return { perms: Object.fromEntries(perms), axes: Object.fromEntries(full), ...(perBlock.length ? { blocks: Object.fromEntries(perBlock) } : {}) };
}

/** Permutation name -> every (tensor, axis) it acts on: the paper's `perm_to_axes`. */
export function axesOfPerms(spec: PermSpec): Map<string, { tensor: string; axis: number }[]> {
  const out = new Map<string, { tensor: string; axis: number }[]>();
  for (const perm of Object.keys(spec.perms)) out.set(perm, []);
  for (const [tensor, entry] of Object.entries(spec.axes)) {
    entry.forEach((perm, axis) => {
      for (const p of entryPermNames(perm)) out.get(p)?.push({ tensor, axis });
    });
  }
  return out;
}
