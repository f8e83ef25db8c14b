/**
 * Which checkpoint `merge` pairs its second input with. Usually the reference A; but B' written by
 * `align --symmetry orthogonal` is aligned to A' (A with folded norms, written beside it and named
 * in B''s metadata), not to A, and may hold an untied `lm_head.weight` a tied A has not: it is
 * merged with A'. The engine's merge and the extension's check of a merge's inputs both ask this,
 * so the extension accepts the pairs the CLI merges.
 */
import { weightsPath } from '../hf/layout';
import { openCheckpoint } from '../safetensors';
import { referenceFoldedIn } from './referenceFolded';

/** A' for a two-input merge whose second input names one (its metadata), else undefined. */
export async function foldedMergeReference(inputs: readonly string[]): Promise<string | undefined> {
  if (inputs.length !== 2) return undefined;
  const ck = await openCheckpoint(weightsPath(inputs[1]));
  try {
    return referenceFoldedIn(ck.metadata);
  } finally {
    await ck.close();
  }
}

/** The checkpoint `inputs[1]` is merged with (and whose tensors it must match): A' when it names one, else `inputs[0]`. */
export async function mergePartner(inputs: readonly string[]): Promise<string> {
  return (await foldedMergeReference(inputs)) ?? inputs[0];
}
