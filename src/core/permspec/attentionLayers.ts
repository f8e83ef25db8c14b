/**
 * The attention layers a permutation spec holds, read back from its block axes (src/core/blockAxis.ts):
 * per layer, its heads (or KV groups with query heads inside), the dimensions per head, and which
 * of those dimensions permute. The inspector and the alignment panel show these instead of a flat
 * list of `…heads`, `…qk`, `…vo` groups.
 *
 * Derived from the structure of the axes alone (any spec file with block axes works); only the
 * words for an inner permutation come from its name: the inferred spec names them `<layer>.qk`
 * (q and k dimensions, jointly) and `<layer>.vo` (v dimensions with the output projection's input).
 */
import type { PermSpec } from '../checkpoint';
import { isBlockAxis } from '../blockAxis';
import { naturalCompare } from './shapes';
import { isExpertPerm } from './inferExperts';

/** One permutation of the dimensions inside each head (or KV group): one per block. */
export interface InnerPermutation {
  readonly perm: string;
  /** "q/k", "v/o", or the permutation's name. */
  readonly label: string;
}

export interface AttentionLayer {
  /** The layer as the permutations name it ("transformer.h.3"). */
  readonly layer: string;
  /** "layer 3" (the last number in the name), else the name. */
  readonly label: string;
  /** Query heads. */
  readonly heads: number;
  /** Grouped-query attention: the number of KV groups (each holds heads / kvGroups query heads). */
  readonly kvGroups?: number;
  readonly headDim: number;
  /** The permutation of the blocks: the heads, or the KV groups with grouped-query attention. */
  readonly outer: string;
  /** Grouped-query attention: the permutation of the query heads inside each KV group. */
  readonly groupHeads?: string;
  /** Permutations of the dimensions inside each block (q/k, v/o). */
  readonly inner: readonly InnerPermutation[];
  /** Some projections' head dimensions never move (rotary q/k). */
  readonly fixedDims: boolean;
  /** "4 heads × 16 dims", "4 KV groups × 2 query heads × 16 dims". */
  readonly shape: string;
  /** What permutes inside the layer, e.g. ["v/o dims permute within each KV group", "q/k dims fixed (RoPE)"]. */
  readonly details: readonly string[];
  /** One line, e.g. "layer 3 attention: 4 KV groups × 2 query heads × 16 dims; v/o dims permute within each KV group; q/k dims fixed (RoPE)". */
  readonly summary: string;
}

function innerLabel(perm: string): string {
  const suffix = perm.slice(perm.lastIndexOf('.') + 1);
  return suffix === 'qk' ? 'q/k' : suffix === 'vo' ? 'v/o' : perm;
}

function layerOf(outer: string): { layer: string; label: string } {
  const bare = outer.startsWith('P_') ? outer.slice(2) : outer;
  const dot = bare.lastIndexOf('.');
  const layer = dot > 0 ? bare.slice(0, dot) : bare;
  const numbers = layer.match(/\d+/g);
  return { layer, label: numbers ? `layer ${numbers[numbers.length - 1]}` : layer };
}

interface Collected {
  heads: number;
  kvGroups?: number;
  headDim: number;
  groupHeads?: string;
  inner: string[];
  fixed: boolean;
  order: number;
}

/** The layer's shape ("4 heads × 16 dims") and what permutes inside it, clause by clause. */
function describe(c: Collected): { shape: string; details: string[] } {
  const block = c.kvGroups !== undefined ? 'KV group' : 'head';
  const shape = c.kvGroups !== undefined
    ? `${c.kvGroups} KV groups × ${c.heads / c.kvGroups} query heads × ${c.headDim} dims`
    : `${c.heads} heads × ${c.headDim} dims`;
  const details: string[] = [];
  if (c.groupHeads !== undefined) details.push('query heads permute within each KV group');
  for (const p of [...c.inner].sort((x, y) => innerLabel(x).localeCompare(innerLabel(y)))) {
    const l = innerLabel(p);
    details.push(l === 'q/k' ? `q/k dims permute jointly within each ${block}` : `${l} dims permute within each ${block}`);
  }
  if (c.fixed) {
    // The inferred Llama-family spec: v/o permutes, the rotary q/k dimensions do not.
    const labels = c.inner.map(innerLabel);
    details.push(labels.includes('v/o') && !labels.includes('q/k') ? 'q/k dims fixed (RoPE)' : 'some head dims fixed');
  }
  return { shape, details };
}

/** Attention layers in layer order ("h.2" before "h.10"); [] without block axes. */
export function attentionLayers(spec: PermSpec): AttentionLayer[] {
  const byOuter = new Map<string, Collected>();
  for (const axes of Object.values(spec.axes)) {
    for (const entry of axes) {
      if (!isBlockAxis(entry)) continue;
      for (const part of entry.parts) {
        const outer = part.perms[0];
        // A mixture's experts are blocks too (spec/inferExperts.ts), but not attention.
        if (outer === null || outer === undefined || part.split.length < 2 || isExpertPerm(outer)) continue;
        const c = byOuter.get(outer) ?? { heads: 0, headDim: part.split[part.split.length - 1], inner: [], fixed: false, order: byOuter.size };
        byOuter.set(outer, c);
        const blocks = part.split.slice(0, -1).reduce((p, s) => p * s, 1);
        c.heads = Math.max(c.heads, blocks);
        if (part.split.length >= 3) {
          c.kvGroups = part.split[0];
          const g = part.perms[1];
          if (g) c.groupHeads = g;
        }
        const last = part.perms[part.perms.length - 1];
        if (last === null) c.fixed = true;
        else if (part.split.length >= 2 && last !== outer && !c.inner.includes(last) && last !== c.groupHeads) c.inner.push(last);
      }
    }
  }
  return [...byOuter.entries()]
    .map(([outer, c]) => ({ outer, c, ...layerOf(outer) }))
    .sort((x, y) => naturalCompare(x.layer, y.layer) || x.c.order - y.c.order)
    .map(({ outer, c, layer, label }) => {
      const { shape, details } = describe(c);
      return {
        layer,
        label,
        heads: c.heads,
        ...(c.kvGroups !== undefined ? { kvGroups: c.kvGroups } : {}),
        headDim: c.headDim,
        outer,
        ...(c.groupHeads !== undefined ? { groupHeads: c.groupHeads } : {}),
        inner: c.inner.map((perm) => ({ perm, label: innerLabel(perm) })).sort((x, y) => x.label.localeCompare(y.label)),
        fixedDims: c.fixed,
        shape,
        details,
        summary: [`${label} attention: ${shape}`, ...details].join('; '),
      };
    });
}
