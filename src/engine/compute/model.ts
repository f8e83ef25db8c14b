/**
 * A classifier forward pass (logits) as barriers, evaluation, BatchNorm reset and the data-driven
 * aligners use it. Each family's is in its engine module (src/engine/families/); building one
 * goes through src/engine/families/build.ts. Only the interface lives here, so the families and
 * compute/ both import it without a cycle.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { FamilyId } from '../../core/families/family';
import type { ForwardOptions } from './layers';

export type { ForwardOptions } from './layers';

export interface Model {
  readonly family: FamilyId;
  /** Per-example input shape in PyTorch order: [features] or [channels, height, width]. */
  readonly inputShape: number[];
  readonly classes: number;
  /** Module names of the BatchNorm layers (empty when none). */
  readonly batchNormLayers: string[];
  /** Module name of the Linear layer that reads the input directly (MLPs), if any. */
  readonly inputLinear?: string;
  /** Logits [n, classes]. Call inside tf.tidy (or dispose the result). */
  forward(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor2D;
  setBatchNormStats(layer: string, mean: Float32Array, variance: Float32Array): void;
  dispose(): void;
}

