/** A matching method's computation in the worker (its options and texts: src/core/methods/). */
import type { PermSpec } from '../../core/checkpoint';
import type { HeldTensorMap } from '../../core/heldTensor';
import type { WeightMatchingResult } from '../../core/matching/weightMatching';
import type { MethodId } from '../../core/methods/registry';
import type { HandlerContext } from '../handlerContext';
import type { AlignRequest } from '../protocol';

export interface MethodRun {
  readonly req: AlignRequest;
  readonly spec: PermSpec;
  /**
   * A's and B's tensors (the spec's; every float tensor when `needsData`): as float32, or as
   * stored for a method with `keepsStoredDtype` (16-bit floats stay 16-bit).
   */
  readonly a: HeldTensorMap;
  readonly b: HeldTensorMap;
  readonly ctx: HandlerContext;
}

export interface MatchingMethod {
  readonly id: MethodId;
  /** Reads BF16/F16 tensors as stored (half the memory of float32) instead of as float32. */
  readonly keepsStoredDtype?: boolean;
  /** Permutations aligning B to A, reported on weight matching's objective scale. */
  run(r: MethodRun): Promise<WeightMatchingResult>;
}
