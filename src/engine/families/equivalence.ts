/**
 * The functional-equivalence check per family: classifiers run B and π(B) on the data (or seeded
 * random inputs), language models their LM forward pass on seeded random token ids, with the
 * checkpoint's config.json or the config their core module builds from the weights' shapes.
 */
import type { TensorMap } from '../../core/checkpoint';
import type { Dataset } from '../../core/data';
import type { ModelConfig } from '../../core/families/modelConfig';
import { transformerOptions } from '../../core/families/lmShapes';
import { coreFamily } from '../../core/families/registry';
import { checkEquivalence, equivalenceBatch, type EquivalenceBatch } from '../compute/equivalence';
import { checkLmEquivalence } from '../compute/transformerEquivalence';
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
  // config.json's model_type names the family when there is one; else the weights' naming does.
  const id = input.lmConfig?.family ?? detectModelFamily(input.b, input.config);
  if (engineFamily(id).lm) {
    if (data) log('equivalence: transformers run on random token ids; the data set is not used for this check');
    const { b, piB, spec, perms, config, seed, lmConfig } = input;
    const lm = lmConfig ?? coreFamily(id).lm!.fromShapes(b, transformerOptions(config));
    const r = checkLmEquivalence(b, piB, lm, seed, { spec, perms });
    log(`equivalence: ${r.description}`);
    return r.report;
  }
  return checkPermutedEquivalence(input.b, input.piB, input.config, data ? await data() : undefined, input.seed);
}
