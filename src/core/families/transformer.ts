/** What the transformer namings share: detection by naming, inference by inferTransformer's rules. */
import type { TensorMap } from '../checkpoint';
import { detectTransformer, inferTransformer, type TransformerKind } from '../spec/inferTransformer';
import type { CoreFamily } from './family';
import type { LmConfig } from './lmConfig';
import type { TransformerOptions } from './lmShapes';

/** Model-config keys of the transformer forward pass without config.json (lmShapes.ts). */
export const TRANSFORMER_CONFIG_KEYS = ['heads', 'kvHeads', 'eps', 'gelu', 'ropeTheta'] as const;

/** A family's LmConfig from its weights' shapes (no config.json); `prefix` is the naming's prefix. */
export type LmConfigFromShapes = (tensors: TensorMap, opts: TransformerOptions, prefix: string) => LmConfig;

export function transformerFamily(kind: TransformerKind, label: string, hfModelTypes: readonly string[], lmConfigFromShapes: LmConfigFromShapes): CoreFamily {
  return {
    id: kind,
    reportedAs: 'transformer',
    label,
    hfModelTypes,
    detect: (tensors) => detectTransformer(tensors, kind) !== null,
    infer: (tensors, hf) => inferTransformer(tensors, kind, detectTransformer(tensors, kind)?.prefix ?? '', hf),
    mismatchHint: 'the residual stream, attention heads or a norm the spec misses',
    configKeys: TRANSFORMER_CONFIG_KEYS,
    lmConfigFromShapes: (tensors, opts) => lmConfigFromShapes(tensors, opts, detectTransformer([...tensors].map(([name, t]) => ({ name, shape: t.shape })), kind)?.prefix ?? ''),
  };
}
