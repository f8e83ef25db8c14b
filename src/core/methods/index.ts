/** Matching methods: ids, pick-list text, options and their rules (computation: src/engine/methods/). */
export { optionAccepts, optionRule, type MethodInfo, type NumberOption } from './method';
export { MAX_ITER, SEED } from './shared';
export { METHODS, METHOD_IDS, defaultOptions, methodInfo, type MethodId } from './registry';
