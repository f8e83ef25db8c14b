/** What the three transformer namings share: detection by naming, inference by inferTransformer's rules. */
import { detectTransformer, inferTransformer, type TransformerKind } from '../spec/inferTransformer';
import type { CoreFamily } from './family';

/** Model-config keys of the transformer forward pass (src/engine/compute/transformerConfig.ts). */
export const TRANSFORMER_CONFIG_KEYS = ['heads', 'kvHeads', 'eps', 'gelu', 'ropeTheta'] as const;

export function transformerFamily(kind: TransformerKind, label: string, hfModelTypes: readonly string[]): CoreFamily {
  return {
    id: kind,
    reportedAs: 'transformer',
    label,
    hfModelTypes,
    detect: (tensors) => detectTransformer(tensors, kind) !== null,
    infer: (tensors, hf) => inferTransformer(tensors, kind, detectTransformer(tensors, kind)?.prefix ?? '', hf),
    mismatchHint: 'the residual stream, attention heads or a norm the spec misses',
    configKeys: TRANSFORMER_CONFIG_KEYS,
  };
}
