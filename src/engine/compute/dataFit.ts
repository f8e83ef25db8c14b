/**
 * Data meets a model: the examples must have the model's input size. Checked before any
 * forward pass, so the user reads which file and which sizes, not a tensor library's shape error.
 */
import { DataError } from '../../core/data';

/** Throws naming the data file when an example's size is not the model's input size. */
export function assertFeaturesFit(exampleShape: readonly number[], inputShape: readonly number[], source: string): void {
  const have = exampleShape.reduce((a, b) => a * b, 1);
  const want = inputShape.reduce((a, b) => a * b, 1);
  if (have !== want) {
    throw new DataError(
      'BadShape',
      `${source}: examples have ${have} features ([${exampleShape.join(', ')}]) but the model's input takes ${want} ([${inputShape.join(', ')}])`,
      source,
    );
  }
}
