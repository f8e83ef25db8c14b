/**
 * The memory budget of a request (`--memory-budget`, setting `rebasin.memoryBudget`): its
 * default, its parser and the one error kind of a plan that does not fit. Sizes in messages are
 * written by `formatBytes` (shared/bytes.ts, shared with the webviews). The plans that check
 * against the budget: memoryPlan.ts (weight matching), lmActivationMemory.ts (activation
 * matching), engine/compute/batchPlan.ts (evaluation batches), the data readers.
 */
import * as os from 'node:os';

/** The error kind of every refusal over the budget (`EngineError`, `DataError`, `MemoryBudgetError`). */
export const OVER_BUDGET = 'OverBudget';

/** Half of physical memory: the budget of a request or a job that gives none (a job's workers share it). */
export function defaultMemoryBudget(totalMemoryBytes: number = os.totalmem()): number {
  return Math.floor(totalMemoryBytes / 2);
}

/**
 * The activation budget of one language-model evaluation whose caller gives none (a forward pass
 * over token windows: src/engine/lm/memoryPlan.ts); requests pass their share of the budget above.
 */
export const DEFAULT_LM_ACTIVATION_BUDGET = 512 * 1024 * 1024;

/** Over budget: the permutation whose solve does not fit, and the bytes it needs. */
export class MemoryBudgetError extends Error {
  readonly kind = OVER_BUDGET;
  constructor(message: string, readonly perm: string, readonly bytesNeeded: number, readonly budget: number) {
    super(message);
    this.name = 'MemoryBudgetError';
  }
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 1024, ki: 1024, kb: 1e3, kib: 1024,
  m: 1024 ** 2, mi: 1024 ** 2, mb: 1e6, mib: 1024 ** 2,
  g: 1024 ** 3, gi: 1024 ** 3, gb: 1e9, gib: 1024 ** 3,
  t: 1024 ** 4, ti: 1024 ** 4, tb: 1e12, tib: 1024 ** 4,
};

/**
 * Parses a byte size: a number with an optional unit, `512MiB`, `8GB`, `1.5 GiB`, `4g`, `1000000`.
 * kB/MB/GB/TB are decimal, KiB/MiB/GiB/TiB and the bare letters K/M/G/T binary. Returns null
 * when the text is not a positive size.
 */
export function parseByteSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null;
}
