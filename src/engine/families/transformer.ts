/**
 * What the transformer engine modules share: the token-id forward pass of
 * src/engine/compute/transformer.ts serves the equivalence check. Their LM forward passes with
 * logits and losses (src/engine/lm/) will plug in here as `buildClassifier`'s counterpart.
 */
import type { TransformerKind } from '../../core/spec/inferTransformer';
import { checkLmEquivalence, checkTransformerEquivalence } from '../compute/transformerEquivalence';
import type { EngineFamily } from './family';

export function transformerEngineFamily(kind: TransformerKind): EngineFamily {
  return {
    id: kind,
    checkEquivalence: ({ b, piB, spec, perms, config, seed, lmConfig }) => {
      // A Hugging Face folder's config.json gives the heads, KV groups and RoPE: its LM forward pass.
      const r = lmConfig ? checkLmEquivalence(b, piB, lmConfig, seed) : checkTransformerEquivalence(b, piB, spec, perms, config, seed);
      return { report: r.report, log: [`equivalence: ${r.description}`] };
    },
  };
}
