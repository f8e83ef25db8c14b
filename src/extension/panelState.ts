/** Builds the alignment panel's state from engine results (align, barrier) for new and stored runs. */
import * as path from 'node:path';
import type { AlignResult, BarrierCurve, BarrierResult } from '../engine/protocol';
import type { AlignmentState, ModelRef } from '../../webview/protocol';
import { heatmapsOf } from './heatmaps';

export function modelRef(file: string): ModelRef {
  return { name: path.basename(file), path: file };
}

/** Just the curve fields (a BarrierResult also carries backend, timing, splits). */
export function curveOf(r: BarrierCurve): BarrierCurve {
  return { lambdas: r.lambdas, naive: r.naive, aligned: r.aligned, barrier: r.barrier };
}

export function alignmentState(a: string, b: string, result: AlignResult, curve?: BarrierCurve, curveNote?: string): AlignmentState {
  return {
    title: `Re-Basin: ${path.basename(b)} → ${path.basename(a)}`,
    a: modelRef(a),
    b: modelRef(b),
    out: result.out ? modelRef(result.out) : undefined,
    method: result.method,
    backend: result.backend,
    seconds: result.seconds,
    iterations: result.iterations,
    objectiveBefore: result.objectiveBefore,
    objectiveAfter: result.objectiveAfter,
    groups: result.groups,
    heatmaps: heatmapsOf(result),
    curve,
    ...(curveNote !== undefined && !curve ? { curveNote } : {}),
    distance: result.distance,
    ...(result.attention && result.attention.length > 0 ? { attention: result.attention } : {}),
  };
}

export function barrierState(a: string, b: string, result: BarrierResult): AlignmentState {
  const align = result.align;
  return {
    title: `Re-Basin barrier: ${path.basename(a)} ↔ ${path.basename(b)}`,
    a: modelRef(a),
    b: modelRef(b),
    method: align?.method ?? 'none',
    backend: result.backend,
    seconds: result.seconds,
    iterations: align?.iterations ?? 0,
    objectiveBefore: align?.objectiveBefore ?? 0,
    objectiveAfter: align?.objectiveAfter ?? 0,
    groups: align?.groups ?? [],
    heatmaps: [],
    heatmapsNote: 'A barrier run keeps no similarity matrices: use Align with… on these models to see the heatmaps.',
    curve: curveOf(result),
    distance: align?.distance,
  };
}
