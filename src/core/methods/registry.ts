/** The matching methods, in the order the CLI and the pick list show them. Add one with a line here and its engine module. */
import { activation } from './activation';
import type { MethodInfo } from './method';
import { ste } from './ste';
import { weight } from './weight';

export const METHODS: readonly MethodInfo[] = [weight, activation, ste];
export type MethodId = MethodInfo['id'];
export const METHOD_IDS: readonly MethodId[] = METHODS.map((m) => m.id);

export function methodInfo(id: MethodId): MethodInfo {
  const m = METHODS.find((x) => x.id === id);
  if (!m) throw new Error(`no method ${id}`);
  return m;
}

/** A method's options object with every default (e.g. STE's `{epochs: 1, batchSize: 500, learningRate: 0.001}`). */
export function defaultOptions(id: MethodId): Record<string, number> {
  return Object.fromEntries(methodInfo(id).options.map((o) => [o.field, o.default]));
}
