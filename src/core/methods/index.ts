/** Matching methods: ids, pick-list text, options and their rules (computation: src/engine/methods/). */
export { optionAccepts, optionRule, type MethodInfo, type NumberOption } from './method';
export { MAX_ITER, SEED } from './shared';
export { DEFAULT_METHOD, METHODS, METHOD_IDS, defaultOptions, methodInfo, methodOptionsOf, type MethodId } from './registry';
