/** Straight-through estimator (paper §3.3, Algorithm 2): learns the permutation minimising the midpoint loss. */
import type { MethodInfo } from './method';

export const ste: MethodInfo = {
  id: 'ste',
  label: 'Straight-through estimator',
  description: 'uses evaluation data, slowest',
  detail: 'Learn the permutation that minimises the midpoint loss (paper §3.3).',
  needsData: true,
  orthogonal: 'language models',
  optionsField: 'ste',
  options: [
    { default: 1, integer: true, min: 1, flag: 'ste-epochs', field: 'epochs', help: 'ste: epochs' },
    { default: 500, integer: true, min: 1, flag: 'ste-batch', field: 'batchSize', help: 'ste: batch size' },
    { default: 1e-3, integer: false, min: 0, minInclusive: false, flag: 'ste-lr', field: 'learningRate', help: 'ste: learning rate' },
  ],
};
