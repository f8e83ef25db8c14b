/** A matching method's computation in the worker (its options and texts: src/core/methods/). */
import type { PermSpec, TensorMap } from '../../core/checkpoint';
import type { WeightMatchingResult } from '../../core/matching/weightMatching';
import type { MethodId } from '../../core/methods/registry';
import type { HandlerContext } from '../dispatch';
import type { AlignRequest } from '../protocol';

export interface MethodRun {
  readonly req: AlignRequest;
  readonly spec: PermSpec;
  /** A's and B's tensors as float32 (the spec's; every float tensor when `needsData`). */
  readonly a: TensorMap;
  readonly b: TensorMap;
  readonly ctx: HandlerContext;
}

export interface MatchingMethod {
  readonly id: MethodId;
  /** Permutations aligning B to A, reported on weight matching's objective scale. */
  run(r: MethodRun): Promise<WeightMatchingResult>;
}
