/** VGG-style conv stacks: conv [+ BN] + activation [+ max pool], then Linear layers (`vgg16_permutation_spec`). */
import { inferSequential, looksSequential, sequentialKind } from '../permspec/inferSequential';
import type { CoreFamily } from './family';

export const vgg: CoreFamily = {
  id: 'vgg',
  reportedAs: 'vgg',
  label: 'VGG-style conv stack',
  detect: (tensors) => looksSequential(tensors) && sequentialKind(tensors) === 'vgg',
  infer: (tensors) => inferSequential(tensors),
  mismatchHint: 'a layer order, or the flatten between the last conv and the first linear layer',
  configKeys: ['activation', 'inputShape', 'layout', 'eps'],
};
