/** Errors of weight matching, permutation and merging. */
export type MatchingErrorKind =
  /** The AbortSignal fired; checked between assignment solves. */
  | 'Cancelled'
  /** A tensor the spec names is missing from a model. */
  | 'MissingTensor'
  /** Two models disagree on a tensor's shape, or a spec axis size disagrees with a tensor. */
  | 'ShapeMismatch'
  /** The spec itself is inconsistent (unknown permutation, wrong number of axes). */
  | 'BadSpec'
  /** A permutation array is not a permutation of 0..n-1 or has the wrong length. */
  | 'BadPermutation'
  /** A cost matrix holds NaN or an infinity (the weights do). */
  | 'NotFinite'
  /** Bad options (too few models, lambda not finite, ...). */
  | 'BadArgument';

export class MatchingError extends Error {
  override readonly name = 'MatchingError';
  constructor(readonly kind: MatchingErrorKind, message: string, readonly tensor?: string) {
    super(message);
  }
}

export function cancelled(): MatchingError {
  return new MatchingError('Cancelled', 'weight matching: cancelled');
}
