/**
 * Builds a loss curve from the points a barrier run streams (Progress.point), in whatever order
 * the workers finish them, so a panel can draw the curve while it is being computed. The partial
 * curve holds the λs done on either path, with gaps (NaN) where a path has not reached a λ yet;
 * its barriers are those of each path's points so far (the line between its first and last λ
 * done), so they are final only once every point is in.
 */
import { barrierFromCurve } from './barrier';
import type { CurvePoint } from './checkpoint';

export interface AssembledPath {
  readonly loss: number[];
  readonly acc: number[];
}

export interface AssembledCurve {
  readonly lambdas: number[];
  readonly naive: AssembledPath;
  readonly aligned?: AssembledPath;
  readonly barrier: { readonly naive: number; readonly aligned?: number };
}

export class CurveAssembler {
  private readonly naive = new Map<number, CurvePoint>();
  private readonly aligned = new Map<number, CurvePoint>();

  /** @param withAligned whether the run computes an aligned path (else the naive path alone). */
  constructor(private readonly withAligned: boolean, private readonly split: 'test' | 'train' = 'test') {}

  /** Takes one point; false when it belongs to another split or repeats a point already in. */
  add(p: CurvePoint): boolean {
    if ((p.split ?? 'test') !== this.split) return false;
    const into = p.path === 'aligned' ? this.aligned : this.naive;
    if (into.has(p.lambda)) return false;
    into.set(p.lambda, p);
    return true;
  }

  /** Points received on every path (naive + aligned). */
  get received(): number {
    return this.naive.size + this.aligned.size;
  }

  /**
   * The curve over the λs done on any path so far, or undefined while no path has two points. A
   * λ not yet done on a path is NaN there (a gap in the plot); each path's barrier is that of its
   * own points so far (NaN below two).
   */
  curve(): AssembledCurve | undefined {
    if (this.naive.size < 2 && this.aligned.size < 2) return undefined;
    const lambdas = [...new Set([...this.naive.keys(), ...this.aligned.keys()])].sort((x, y) => x - y);
    const path = (m: Map<number, CurvePoint>): AssembledPath => ({
      loss: lambdas.map((l) => m.get(l)?.loss ?? Number.NaN),
      acc: lambdas.map((l) => m.get(l)?.acc ?? Number.NaN),
    });
    const barrierOf = (m: Map<number, CurvePoint>): number => {
      if (m.size < 2) return Number.NaN;
      const done = [...m.values()];
      return barrierFromCurve(done.map((p) => p.lambda), done.map((p) => p.loss));
    };
    const naive = path(this.naive);
    const aligned = this.withAligned ? path(this.aligned) : undefined;
    return {
      lambdas,
      naive,
      ...(aligned ? { aligned } : {}),
      barrier: { naive: barrierOf(this.naive), ...(aligned ? { aligned: barrierOf(this.aligned) } : {}) },
    };
  }
}
