/**
 * What the inspector shows of a checkpoint's architecture, from its header (and config.json):
 * the family, the permutation groups, the size of the symmetry group and, for transformers, the
 * attention layers (heads × head_dim, KV groups, which dimensions permute) and the experts of a
 * mixture (experts × units, the router's top-k). No vscode: tested
 * directly and in the browser test with the shared fixtures.
 */
import type { HfConfig } from '../core/families/family';
import { describeFamily, inferSpec, symmetryGroupLog10, type TensorShape } from '../core/permspec';
import { attentionLayers } from '../core/permspec/attentionLayers';
import { expertLayers } from '../core/permspec/expertLayers';
import type { ArchitectureInfo } from '../../webview/protocol';

/** Throws (a SpecError) when no architecture can be inferred. */
export function architectureOf(tensors: readonly TensorShape[], hf?: HfConfig): ArchitectureInfo {
  const inferred = inferSpec(tensors, hf);
  const groups = Object.keys(inferred.spec.perms).length;
  const attention = attentionLayers(inferred.spec);
  const experts = expertLayers(inferred.spec, hf?.expertsPerToken);
  return {
    // One layer (or only un-permutable tensors): no hidden units, so no family worth naming.
    family: groups === 0 ? 'No hidden units to permute (a single layer): nothing to align' : describeFamily(inferred),
    perms: inferred.spec.perms,
    symmetryLog10: symmetryGroupLog10(inferred.spec),
    notes: inferred.notes,
    ...(inferred.spec.blocks ? { blocks: inferred.spec.blocks } : {}),
    ...(attention.length > 0 ? { attention } : {}),
    ...(experts.length > 0 ? { experts } : {}),
  };
}
