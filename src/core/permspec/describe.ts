/** Text and numbers about a spec for the inspector: the family in words and the size of its symmetry group. */
import type { PermSpec } from '../checkpoint';
import { coreFamily } from '../families/registry';
import type { InferredSpec } from './infer';

/** log10 of n! by summing log10 k; Stirling's series beyond where the sum gets slow. */
export function log10Factorial(n: number): number {
  if (n < 2) return 0;
  if (n <= 4096) {
    let s = 0;
    for (let k = 2; k <= n; k++) s += Math.log10(k);
    return s;
  }
  // ln n! = n ln n - n + ln(2 pi n)/2 + 1/(12n) - 1/(360 n^3)
  const ln = n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + 1 / (12 * n) - 1 / (360 * n ** 3);
  return ln / Math.LN10;
}

/**
 * log10 of the number of networks the spec's permutations relate: log10 of the product of n_k!
 * (a per-block permutation counts (size / blocks)! once per block).
 */
export function symmetryGroupLog10(spec: PermSpec): number {
  let s = 0;
  for (const [name, n] of Object.entries(spec.perms)) {
    const blocks = spec.blocks?.[name] ?? 1;
    s += blocks * log10Factorial(n / blocks);
  }
  return s;
}

/** One line for the inspector, e.g. "ResNet (torchvision naming): 17 permutation groups, 10^5632 equivalent networks". */
export function describeFamily(inferred: InferredSpec): string {
  const name = coreFamily(inferred.id).label;
  const count = Object.keys(inferred.spec.perms).length;
  const log = symmetryGroupLog10(inferred.spec);
  return `${name}: ${count} permutation group${count === 1 ? '' : 's'}, about 10^${Math.floor(log)} equivalent networks`;
}
