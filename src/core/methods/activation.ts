/** Activation matching (paper §3.1): correlation of both models' activations on training data. */
import type { MethodInfo } from './method';

export const activation: MethodInfo = {
  id: 'activation',
  label: 'Activation matching',
  description: 'uses evaluation data',
  detail: 'Match units by the correlation of their activations (paper §3.1).',
  needsData: true,
  orthogonal: 'every model',
  options: [],
};
