/**
 * Builds a loss curve from the points a barrier run streams (Progress.point), in whatever order
 * the workers finish them, so a panel can draw the curve while it is being computed (the barrier
 * job fills both paths together). The partial curve holds the λs done on both paths, so it has
 * no gaps (webview messages are JSON: a NaN would arrive as null); its barriers are those of the
 * points so far (the line between the first and last λ done), final once every point is in.
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

  /** The curve over the λs done on every path, or undefined while fewer than two are. */
  curve(): AssembledCurve | undefined {
    const lambdas = [...this.naive.keys()].filter((l) => !this.withAligned || this.aligned.has(l)).sort((x, y) => x - y);
    if (lambdas.length < 2) return undefined;
    const path = (m: Map<number, CurvePoint>): AssembledPath => ({ loss: lambdas.map((l) => m.get(l)!.loss), acc: lambdas.map((l) => m.get(l)!.acc) });
    const naive = path(this.naive);
    const aligned = this.withAligned ? path(this.aligned) : undefined;
    return {
      lambdas,
      naive,
      ...(aligned ? { aligned } : {}),
      barrier: { naive: barrierFromCurve(lambdas, naive.loss), ...(aligned ? { aligned: barrierFromCurve(lambdas, aligned.loss) } : {}) },
    };
  }
}
