/**
 * Batch sizes of a loss-curve evaluation from a memory plan: the bytes a forward pass holds per
 * example (measured on a tiny probe batch) times the batch size must fit in what the budget
 * leaves after the request's resident bytes (weights, the data set, cached first-layer outputs).
 * No tfjs here (the barrier job plans budgets on the caller's thread); the probe is activationBytes.ts.
 * A ResNet on 28x28 images holds about 1.5 MB of activations per example, so the fixed batch of
 * 2000 that suits an MLP needs 3 GB and overruns wasm's 4 GiB heap ("memory access out of bounds").
 */
import type { BackendName } from '../protocol';
import { EngineError } from '../errors';
import { OVER_BUDGET } from '../../core/memoryBudget';
import { formatBytes } from '../../../shared/bytes';

/**
 * What one worker on the wasm backend may plan for: its heap is a wasm32 memory of at most
 * 4 GiB, which grows in steps of up to 20% and holds the runtime, kernel scratch and
 * fragmentation besides the tensors planned here.
 */
export const WASM_HEAP_PLAN_BYTES = 2 * 2 ** 30;

/** Unmeasured scratch (kernel workspaces, allocator slack) on top of the tensors tfjs tracks. */
const SAFETY = 1.5;

export interface BatchPlanInput {
  /** Bytes this request may use. */
  readonly budget: number;
  readonly backend: BackendName;
  /** Bytes held for the whole request whatever the batch size. */
  readonly resident: number;
  /** Bytes of activations per example in a batch (activationBytesPerExample). */
  readonly perExample: number;
  /** Largest useful batch (fewer examples than this: the data set's size). */
  readonly maxBatch: number;
  /** What is planned, for the refusal message ("evaluating model.safetensors"). */
  readonly what: string;
  /** What `resident` holds, for the refusal message (default "weights and data"). */
  readonly residentWhat?: string;
}

/** The largest batch whose activations fit: (budget − resident) / (bytes per example × safety), at least 1. */
export function planBatchSize(p: BatchPlanInput): number {
  const budget = p.backend === 'wasm' ? Math.min(p.budget, WASM_HEAP_PLAN_BYTES) : p.budget;
  const free = budget - p.resident;
  const perExample = p.perExample * SAFETY;
  if (free < perExample) {
    throw new EngineError(
      OVER_BUDGET,
      `${p.what}: needs ${formatBytes(p.resident)} for ${p.residentWhat ?? 'weights and data'} plus ${formatBytes(perExample)} per example, over the memory budget of ${formatBytes(budget)}${p.backend === 'wasm' && p.budget > budget ? ' (the wasm backend addresses at most 4 GiB per worker)' : ''}: use fewer examples (--limit) or a larger budget`,
    );
  }
  return Math.max(1, Math.min(p.maxBatch, Math.floor(free / perExample)));
}
