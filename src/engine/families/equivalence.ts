/**
 * The functional-equivalence check per family: classifiers run B and π(B) on the data (or seeded
 * random inputs), families without one use their own check (transformers: random token ids).
 */
import type { TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import type { ModelConfig } from '../../core/families/modelConfig';
import { checkEquivalence, equivalenceBatch, type EquivalenceBatch } from '../compute/equivalence';
import type { Model } from '../compute/model';
import type { EquivalenceReport } from '../protocol';
import { buildModel, detectModelFamily } from './build';
import type { FamilyEquivalenceInput } from './family';
import { engineFamily } from './registry';

/** Builds B and pi(B) from tensors (config as for the barrier) and compares them. */
export function checkPermutedEquivalence(b: TensorMap, piB: TensorMap, config: ModelConfig, data?: Dataset, seed = 0): EquivalenceReport {
  let mb: Model | undefined;
  let mp: Model | undefined;
  let batch: EquivalenceBatch | undefined;
  try {
    mb = buildModel(b, config);
    mp = buildModel(piB, config);
    batch = equivalenceBatch(mb.inputShape, data, 64, seed);
    return checkEquivalence(mb.forward, mp.forward, batch, mb.family);
  } finally {
    mb?.dispose();
    mp?.dispose();
    batch?.x.dispose();
  }
}

/**
 * B against π(B) by the family's check. `data` (a few examples) is loaded only for classifier
 * families; `log` gets lines for the user.
 */
export async function checkFamilyEquivalence(
  input: FamilyEquivalenceInput, data: (() => Promise<Dataset | undefined>) | undefined, log: (line: string) => void,
): Promise<EquivalenceReport> {
  const family = engineFamily(detectModelFamily(input.b, input.config));
  if (family.checkEquivalence) {
    if (data) log('equivalence: transformers run on random token ids; the data set is not used for this check');
    const r = family.checkEquivalence(input);
    for (const l of r.log) log(l);
    return r.report;
  }
  return checkPermutedEquivalence(input.b, input.piB, input.config, data ? await data() : undefined, input.seed);
}
