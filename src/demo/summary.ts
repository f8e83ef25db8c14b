/**
 * The demo's numbers (written as summary.json, printed as tables, embedded in the report) and
 * the choice of λ to merge at.
 */
import type { BarrierCurve, BackendName, GroupSummary } from '../engine/protocol';

export interface EvalPoint {
  readonly loss: number;
  readonly acc: number;
}

export interface LambdaPoint extends EvalPoint {
  readonly lambda: number;
}

export interface DemoSummary {
  readonly setup: {
    readonly widths: readonly number[];
    readonly epochs: number;
    readonly seeds: readonly [number, number];
    readonly batchSize: number;
    readonly learningRate: number;
    readonly steps: number;
    readonly limit?: number;
    /** Epochs behind the reference numbers of notes/COMPUTE.md (naive ≈ 0.80, aligned ≈ 0.00). */
    readonly referenceEpochs: number;
  };
  readonly backend: BackendName;
  readonly workers: number;
  /** Per model: trained in this run, or reused from the cache. */
  readonly models: {
    readonly a: string;
    readonly b: string;
    readonly alignedB: string;
    readonly merged: string;
    readonly trained: readonly [boolean, boolean];
  };
  readonly results: {
    readonly a: EvalPoint;
    readonly b: EvalPoint;
    readonly naiveMidpoint: LambdaPoint;
    readonly alignedMidpoint: LambdaPoint;
    readonly merge: LambdaPoint;
  };
  readonly barrier: { readonly naive: number; readonly aligned: number };
  readonly curve: BarrierCurve;
  readonly align: {
    readonly iterations: number;
    readonly objectiveBefore: number;
    readonly objectiveAfter: number;
    readonly groups: readonly GroupSummary[];
  };
  /** Seconds per step (train, align, barrier, merge, report). */
  readonly timings: Readonly<Record<string, number>>;
  readonly totalSeconds: number;
}

/** Index of the λ closest to 0.5 (the midpoint; exact on odd grids such as the paper's 25). */
export function midpointIndex(lambdas: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < lambdas.length; i++) if (Math.abs(lambdas[i] - 0.5) < Math.abs(lambdas[best] - 0.5)) best = i;
  return best;
}

/**
 * The λ the aligned curve favours: the interior point (not an endpoint, which would just be
 * A or π(B)) with the lowest aligned loss. Ties go to the one nearest the midpoint.
 */
export function favouredLambdaIndex(lambdas: readonly number[], alignedLoss: readonly number[]): number {
  if (lambdas.length < 3) throw new RangeError(`favoured lambda: needs at least 3 lambdas, got ${lambdas.length}`);
  let best = -1;
  for (let i = 1; i < lambdas.length - 1; i++) {
    if (!Number.isFinite(alignedLoss[i])) continue;
    if (best < 0 || alignedLoss[i] < alignedLoss[best] || (alignedLoss[i] === alignedLoss[best] && Math.abs(lambdas[i] - 0.5) < Math.abs(lambdas[best] - 0.5))) best = i;
  }
  return best < 0 ? midpointIndex(lambdas) : best;
}

export function pointAt(curve: { readonly loss: readonly number[]; readonly acc: readonly number[] }, lambdas: readonly number[], i: number): LambdaPoint {
  return { lambda: lambdas[i], loss: curve.loss[i], acc: curve.acc[i] };
}
