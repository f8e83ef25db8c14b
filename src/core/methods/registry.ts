/** The matching methods, in the order the CLI and the pick list show them. Add one with a line here and its engine module. */
import { activation } from './activation';
import type { MethodInfo } from './method';
import { ste } from './ste';
import { weight } from './weight';

export const METHODS: readonly MethodInfo[] = [weight, activation, ste];
export type MethodId = MethodInfo['id'];
export const METHOD_IDS: readonly MethodId[] = METHODS.map((m) => m.id);
/** The method used when a request or a command gives none: the first listed. */
export const DEFAULT_METHOD: MethodId = METHODS[0].id;

export function methodInfo(id: MethodId): MethodInfo {
  const m = METHODS.find((x) => x.id === id);
  if (!m) throw new Error(`no method ${id}`);
  return m;
}

/**
 * The request fields that hold method `id`'s own options (`{ ste: {...} }` for STE), picked from
 * `fields`; nothing for a method without options, or when `fields` does not carry them.
 */
export function methodOptionsOf<F extends object>(id: MethodId, fields: F): Partial<F> {
  const field = methodInfo(id).optionsField as keyof F | undefined;
  return field === undefined || fields[field] === undefined ? {} : ({ [field]: fields[field] } as unknown as Partial<F>);
}

/** A method's options object with every default (e.g. STE's `{epochs: 1, batchSize: 500, learningRate: 0.001}`). */
export function defaultOptions(id: MethodId): Record<string, number> {
  return Object.fromEntries(methodInfo(id).options.map((o) => [o.field, o.default]));
}
