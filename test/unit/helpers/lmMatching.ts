/** What the LM matching tests share: how far two weight sets' logits are apart. */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../../src/core/checkpoint';
import type { LmConfig } from '../../../src/engine/lm/config';
import { buildLm } from '../../../src/engine/lm/model';

/** Largest |logit difference| of `x` and `y` on ids [n, t], relative to the largest |logit| of `x` (at least 1). */
export async function logitsGap(config: LmConfig, x: TensorMap, y: TensorMap, ids: Int32Array, n: number, t: number): Promise<number> {
  const logits = (w: TensorMap): Float32Array => {
    const m = buildLm(w, config);
    try {
      return tf.tidy(() => m.logits(tf.tensor2d(ids, [n, t], 'int32')).dataSync() as Float32Array);
    } finally {
      m.dispose();
    }
  };
  const lx = logits(x);
  const ly = logits(y);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < lx.length; i++) {
    worst = Math.max(worst, Math.abs(lx[i] - ly[i]));
    scale = Math.max(scale, Math.abs(lx[i]));
  }
  return worst / scale;
}
