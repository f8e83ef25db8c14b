/** Weight matching (paper §3.2, Algorithm 1): no data, only the shared seed and sweep cap. */
import type { MethodInfo } from './method';

export const weight: MethodInfo = {
  id: 'weight',
  label: 'Weight matching',
  description: 'no data needed',
  detail: 'Match units by the similarity of their weights (paper §3.2).',
  needsData: false,
  orthogonal: 'every model',
  options: [],
};
