/** What the three transformer namings share: detection by naming, inference by inferTransformer's rules. */
import type { TensorMap } from '../checkpoint';
import { detectTransformer, inferTransformer, type TransformerKind } from '../spec/inferTransformer';
import type { CoreFamily } from './family';
import type { CoreLm } from './lm';

/** Model-config keys of the transformer forward pass without config.json (lmShapes.ts). */
export const TRANSFORMER_CONFIG_KEYS = ['heads', 'kvHeads', 'eps', 'gelu', 'ropeTheta'] as const;

/** The name prefix before the family's naming (`transformer.`, `model.`, `bert.`, or empty). */
export function namingPrefix(tensors: TensorMap, kind: TransformerKind): string {
  return detectTransformer([...tensors].map(([name, t]) => ({ name, shape: t.shape })), kind)?.prefix ?? '';
}

export function transformerFamily(kind: TransformerKind, label: string, hfModelTypes: readonly string[], lm: CoreLm): CoreFamily {
  return {
    id: kind,
    reportedAs: 'transformer',
    label,
    hfModelTypes,
    detect: (tensors) => detectTransformer(tensors, kind) !== null,
    infer: (tensors, hf) => inferTransformer(tensors, kind, detectTransformer(tensors, kind)?.prefix ?? '', hf),
    mismatchHint: 'the residual stream, attention heads or a norm the spec misses',
    configKeys: TRANSFORMER_CONFIG_KEYS,
    lm,
  };
}
