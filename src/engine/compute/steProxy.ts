/**
 * What both straight-through estimators (ste.ts for MLPs, lmSte.ts for language models) hold:
 * A's weights as constants, the learned proxy theta~ as variables (starting at A, as in the
 * paper's Algorithm 2) and its Adam optimiser; the straight-through midpoint
 * (A + theta~ + stopgrad(pi(B) - theta~)) / 2, whose value is (A + pi(B)) / 2 and whose gradient
 * reaches theta~.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';

export class SteProxy {
  private readonly constA = new Map<string, tf.Tensor>();
  private readonly proxy = new Map<string, tf.Variable>();
  readonly optimizer: tf.Optimizer;

  constructor(private readonly a: TensorMap, readonly names: readonly string[], learningRate: number) {
    for (const n of names) {
      const t = a.get(n)!;
      this.constA.set(n, tf.tensor(t.data, [...t.shape]));
      this.proxy.set(n, tf.tidy(() => tf.variable(tf.tensor(t.data, [...t.shape]))));
    }
    this.optimizer = tf.train.adam(learningRate);
  }

  /** theta~ on the host (what weight matching projects). */
  host(): Map<string, DenseTensor> {
    return new Map(this.names.map((n) => [n, { shape: this.a.get(n)!.shape, data: this.proxy.get(n)!.dataSync() as Float32Array }]));
  }

  /** The straight-through offsets pi(B) - theta~: constants, to be made outside the gradient function. */
  offsets(piB: TensorMap): Map<string, tf.Tensor> {
    return new Map(this.names.map((n) => [n, tf.sub(tf.tensor(piB.get(n)!.data, [...this.a.get(n)!.shape]), this.proxy.get(n)!)]));
  }

  /** Tensor `name` of the straight-through midpoint, given `offsets(piB)`. */
  midpoint(name: string, offsets: ReadonlyMap<string, tf.Tensor>): tf.Tensor {
    return tf.mul(0.5, tf.add(this.constA.get(name)!, tf.add(this.proxy.get(name)!, offsets.get(name)!)));
  }

  /** One optimiser step on theta~ from `loss` (called in a tidy); returns the loss. */
  minimize(loss: () => tf.Scalar): tf.Scalar {
    return this.optimizer.minimize(loss, true, [...this.proxy.values()])!;
  }

  dispose(): void {
    this.optimizer.dispose();
    for (const t of [...this.constA.values(), ...this.proxy.values()]) t.dispose();
  }
}
