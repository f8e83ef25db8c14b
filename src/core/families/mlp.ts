/** MLP: a chain of Linear layers (Git Re-Basin's `mlp_permutation_spec`, found from names and shapes). */
import { inferSequential, looksSequential } from '../permspec/inferSequential';
import type { CoreFamily } from './family';

export const mlp: CoreFamily = {
  id: 'mlp',
  reportedAs: 'mlp',
  label: 'MLP (chain of Linear layers)',
  // After vgg in the registry: any Linear/conv chain without a conv layer.
  detect: looksSequential,
  infer: (tensors) => inferSequential(tensors),
  mismatchHint: 'a layer order, or a tensor such as a norm or skip connection the spec misses',
  configKeys: ['activation', 'inputShape', 'eps'],
};
