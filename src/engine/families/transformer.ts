/**
 * What the transformer engine modules share: the equivalence check runs B and π(B) through the
 * family's LM forward pass (src/engine/lm/), with the checkpoint's config.json or, without
 * one, the config the family's core module builds from the weights' shapes.
 */
import { coreFamily } from '../../core/families/registry';
import { transformerOptions } from '../../core/families/lmShapes';
import type { TransformerKind } from '../../core/spec/inferTransformer';
import { checkLmEquivalence } from '../compute/transformerEquivalence';
import type { EngineFamily } from './family';

export function transformerEngineFamily(kind: TransformerKind): EngineFamily {
  return {
    id: kind,
    checkEquivalence: ({ b, piB, spec, perms, config, seed, lmConfig }) => {
      const lm = lmConfig ?? coreFamily(kind).lmConfigFromShapes!(b, transformerOptions(config));
      const r = checkLmEquivalence(b, piB, lm, seed, { spec, perms });
      return { report: r.report, log: [`equivalence: ${r.description}`] };
    },
  };
}
