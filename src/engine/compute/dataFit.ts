/**
 * Data meets a model: the examples must have the model's input size. Checked before any
 * forward pass, so the user reads which file and which sizes, not a tensor library's shape error.
 */
import { DataError } from '../../core/data';

/**
 * Throws naming the data file when an example's size is not the model's input size, or when
 * images [C, H, W] (or [H, W, C]) hold as many values as the model's but in another shape.
 */
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
  if (exampleShape.length === 3 && inputShape.length === 3) {
    const [c, h, w] = inputShape;
    const same = (s: readonly number[]): boolean => s.every((d, i) => d === exampleShape[i]);
    if (!same([c, h, w]) && !same([h, w, c])) {
      throw new DataError('BadShape', `${source}: images are [${exampleShape.join(', ')}] but the model takes [${inputShape.join(', ')}] (channels, height, width)`, source);
    }
  }
}
