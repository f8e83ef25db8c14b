/** The matching methods' computations by id (src/core/methods/registry.ts lists them for the front ends). */
import type { MethodId } from '../../core/methods/registry';
import { activation } from './activation';
import type { MatchingMethod } from './method';
import { ste } from './ste';
import { weight } from './weight';

export const MATCHING_METHODS: Readonly<Record<MethodId, MatchingMethod>> = { weight, activation, ste };
