/** What the transformer namings share: detection by naming, inference by inferTransformer with the family's rules. */
import type { TensorMap } from '../checkpoint';
import { inferTransformer, namingPrefix, type TransformerNaming } from '../permspec/inferTransformer';
import type { CoreFamily } from './family';
import type { CoreLm } from './lm';

/** Model-config keys of the transformer forward pass without config.json (lmShapes.ts). */
export const TRANSFORMER_CONFIG_KEYS = ['heads', 'kvHeads', 'eps', 'gelu', 'ropeTheta'] as const;

/** The name prefix before `naming`'s blocks in a tensor map (empty when none). */
export function namingPrefixOf(tensors: TensorMap, naming: TransformerNaming): string {
  return namingPrefix([...tensors].map(([name, t]) => ({ name, shape: t.shape })), naming) ?? '';
}

/**
 * A transformer family: reported as `transformer`, detected by its naming, its spec by its rules,
 * its LM pass's config. config.json names it by the `model_type`s its forward pass reads and by
 * `alsoNamedBy` (types with the same naming that have no forward pass here, e.g. roberta).
 */
export function transformerFamily(naming: TransformerNaming, label: string, lm: Omit<CoreLm, 'prefix'>, alsoNamedBy: readonly string[] = []): CoreFamily {
  return {
    id: naming.id,
    reportedAs: 'transformer',
    label,
    hfModelTypes: [...Object.keys(lm.modelTypes), ...alsoNamedBy],
    detect: (tensors) => namingPrefix(tensors, naming) !== null,
    infer: (tensors, hf) => inferTransformer(tensors, naming, namingPrefix(tensors, naming) ?? '', hf),
    mismatchHint: 'the residual stream, attention heads or a norm the spec misses',
    configKeys: TRANSFORMER_CONFIG_KEYS,
    lm: { ...lm, prefix: (tensors) => namingPrefix(tensors, naming) },
  };
}
