/**
 * BatchNorm statistics reset (Git Re-Basin appendix A.4; Jordan et al., REPAIR): an
 * interpolated network's running statistics are not the statistics of its own activations,
 * so recompute every BN layer's running mean and variance from training batches, with the
 * batch statistics of train mode, averaged cumulatively over batches (PyTorch momentum=None).
 */
import * as tf from '@tensorflow/tfjs-core';
import { throwIfCancelled } from '../errors';
import type { Batches } from './evaluate';
import type { Model } from './model';

export async function resetBatchNorm(model: Model, batches: Batches, signal?: AbortSignal): Promise<void> {
  if (model.batchNormLayers.length === 0) return;
  const sums = new Map<string, { mean: Float64Array; variance: Float64Array }>();
  let count = 0;
  for (const x of batches.xs) {
    throwIfCancelled(signal, 'batchnorm reset');
    tf.tidy(() => {
      model.forward(x, {
        batchNorm: 'batch',
        onBatchStats: (layer, mean, variance) => {
          const m = mean.dataSync();
          const v = variance.dataSync();
          let s = sums.get(layer);
          if (!s) sums.set(layer, (s = { mean: new Float64Array(m.length), variance: new Float64Array(m.length) }));
          for (let i = 0; i < m.length; i++) {
            s.mean[i] += m[i];
            s.variance[i] += v[i];
          }
        },
      });
    });
    count++;
    await new Promise<void>((r) => setImmediate(r));
  }
  // Train mode normalises every layer with batch statistics, so each layer's inputs are those of
  // a train-mode pass, as in PyTorch; the cumulative average is the mean over equal-weight batches.
  for (const [layer, s] of sums) {
    model.setBatchNormStats(layer, Float32Array.from(s.mean, (v) => v / count), Float32Array.from(s.variance, (v) => v / count));
  }
}
