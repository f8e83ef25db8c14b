/**
 * Which spec permutations Mixtral's expert features (layers.ts `LmFeatureHooks.experts`) sample:
 * per block, the block axis [experts, units] of the stacked w2's input (core/moe/expertStack.ts),
 * outer level the experts' order, inner level each expert's hidden units.
 */
import type { BlockPart, PermSpec } from '../../core/checkpoint';
import { isBlockAxis } from '../../core/blockAxis';
import { stackedName } from '../../core/moe/expertStack';
import type { LmConfig } from './config';

export function mixtralExpertAxes(spec: PermSpec, config: LmConfig, prefix: string): (BlockPart | undefined)[] {
  return Array.from({ length: config.layers }, (_, i) => {
    const entry = spec.axes[stackedName(`${prefix}layers.${i}.block_sparse_moe.experts`, 'w2')]?.[1];
    return isBlockAxis(entry) && entry.parts.length === 1 ? entry.parts[0] : undefined;
  });
}
