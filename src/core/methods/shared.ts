/** Options every method takes: the seed of the random permutation order, and the sweep cap of weight matching. */
import type { NumberOption } from './method';

/** mulberry32 seeds are 32-bit unsigned: one range for the CLI, the settings and the engine. */
export const SEED: NumberOption = { default: 0, integer: true, min: 0, max: 0xffffffff, flag: 'seed', field: 'seed', help: 'random seed' };

/** Algorithm 1 stops after a sweep without improvement, or here. */
export const MAX_ITER: NumberOption = { default: 100, integer: true, min: 1, flag: 'max-iter', field: 'maxIter', help: 'weight matching sweeps at most' };
