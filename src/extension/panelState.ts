/** Builds the alignment panel's state from engine results (align, barrier) for new and stored runs. */
import * as path from 'node:path';
import type { AlignResult, BarrierCurve, BarrierResult } from '../engine/protocol';
import type { AlignmentState, DataProvenance, ModelRef } from '../../webview/protocol';
import { heatmapsOf } from './heatmaps';

export function modelRef(file: string): ModelRef {
  return { name: path.basename(file), path: file };
}

/** Just the curve fields (a BarrierResult also carries backend, timing, splits). */
export function curveOf(r: BarrierCurve): BarrierCurve {
  return { lambdas: r.lambdas, naive: r.naive, aligned: r.aligned, barrier: r.barrier };
}

/**
 * Which data a curve was computed on: the data file or folder given, the split and the examples
 * the workers evaluated (language models: sequences, tokens each, positions scored).
 */
export function dataProvenance(dataPath: string, result: Pick<BarrierResult, 'evaluation' | 'lm'>): DataProvenance {
  const evaluated = result.evaluation?.data;
  const lm = result.lm;
  return {
    name: path.basename(dataPath),
    ...(evaluated ? { split: evaluated.split, examples: evaluated.examples } : {}),
    ...(lm ? { sequences: lm.sequences, seqLen: lm.seqLen, positions: lm.positions } : {}),
  };
}

/**
 * The panel's state of an alignment. A curve with a note is partial: still being computed (the
 * note ends in "…") or stopped (cancelled, interrupted): its points so far are kept.
 */
export function alignmentState(a: string, b: string, result: AlignResult, curve?: BarrierCurve, curveNote?: string, data?: DataProvenance): AlignmentState {
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
    ...(curveNote !== undefined ? { curveNote } : {}),
    distance: result.distance,
    ...(data ? { data } : {}),
    ...(result.attention && result.attention.length > 0 ? { attention: result.attention } : {}),
  };
}

export function barrierState(a: string, b: string, result: BarrierResult, dataPath?: string): AlignmentState {
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
    ...(dataPath !== undefined ? { data: dataProvenance(dataPath, result) } : {}),
  };
}
