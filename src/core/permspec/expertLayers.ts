/**
 * The mixture-of-experts layers a permutation spec holds, read back from its block axes: per
 * layer, the number of experts, the hidden units of each, and the permutations of both (the
 * experts' order outside, each expert's units inside; spec/inferExperts.ts). The inspector shows
 * these in words beside the attention layers. `topK` (experts per token) comes from config.json
 * when it says so; the spec does not carry it.
 */
import type { PermSpec } from '../checkpoint';
import { isBlockAxis } from '../blockAxis';
import { isExpertPerm } from './inferExperts';
import { naturalCompare } from './shapes';

export interface ExpertLayer {
  /** The layer as the permutations name it ("model.layers.0"). */
  readonly layer: string;
  /** "layer 0" (the last number in the name), else the name. */
  readonly label: string;
  readonly experts: number;
  readonly unitsPerExpert: number;
  /** Experts the router picks per token (config.json), when known. */
  readonly topK?: number;
  /** The permutation of the experts' order. */
  readonly outer: string;
  /** The permutation of the units inside each expert (one per expert). */
  readonly units: string;
  /** "layer 0 MLP: 4 experts × 96 units, router top 2; experts permute as units, the units inside each expert". */
  readonly summary: string;
}

/** Expert layers in layer order; [] when the spec has no experts. */
export function expertLayers(spec: PermSpec, topK?: number): ExpertLayer[] {
  const byOuter = new Map<string, { experts: number; unitsPerExpert: number; units: string }>();
  for (const axes of Object.values(spec.axes)) {
    for (const entry of axes) {
      if (!isBlockAxis(entry)) continue;
      for (const part of entry.parts) {
        const [outer, units] = part.perms;
        if (!outer || !units || part.split.length !== 2 || !isExpertPerm(outer)) continue;
        byOuter.set(outer, { experts: part.split[0], unitsPerExpert: part.split[1], units });
      }
    }
  }
  return [...byOuter.entries()]
    .map(([outer, c]) => ({ outer, c, layer: outer.slice(2, -'.experts'.length) }))
    .sort((x, y) => naturalCompare(x.layer, y.layer))
    .map(({ outer, c, layer }) => {
      const numbers = layer.match(/\d+/g);
      const label = numbers ? `layer ${numbers[numbers.length - 1]}` : layer;
      const router = topK !== undefined ? `, router top ${topK}` : '';
      return {
        layer,
        label,
        experts: c.experts,
        unitsPerExpert: c.unitsPerExpert,
        ...(topK !== undefined ? { topK } : {}),
        outer,
        units: c.units,
        summary: `${label} MLP: ${c.experts} experts × ${c.unitsPerExpert} units${router}; experts permute as units, the units inside each expert`,
      };
    });
}
