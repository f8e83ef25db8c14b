/** Builds the alignment panel's state from engine results (align, barrier) for new and stored runs. */
import * as path from 'node:path';
import { checkpointName, checkpointNamePair } from '../core/checkpointName';
import type { AlignResult, BarrierCurve, BarrierResult } from '../engine/protocol';
import type { AlignmentState, DataProvenance, ModelRef, OrthogonalState } from '../../webview/protocol';
import { heatmapsOf } from './heatmaps';

export function modelRef(file: string, name = checkpointName(file)): ModelRef {
  return { name, path: file };
}

/** A and B as the panel names them (told apart when their names alone are equal). */
function refs(a: string, b: string): { a: ModelRef; b: ModelRef } {
  const [na, nb] = checkpointNamePair(a, b);
  return { a: modelRef(a, na), b: modelRef(b, nb) };
}

/** The alignment panel's title (also how an open panel of the same pair is found again). */
export function alignmentTitle(a: string, b: string): string {
  const [na, nb] = checkpointNamePair(a, b);
  return `Re-Basin: ${nb} → ${na}`;
}

/**
 * What an open panel of the same pair shows while a new run of it works (`status` "running"),
 * or after that run stopped without results ("cancelled", "failed"): the earlier run's heatmaps
 * and curve are cleared, so nothing stale reads as current.
 */
export function runningState(a: string, b: string, method: string, what: string, status: 'running' | 'cancelled' | 'failed' = 'running'): AlignmentState {
  const note = status === 'running' ? `Running: ${what}…` : `This run ${status === 'cancelled' ? 'was cancelled' : `failed: ${what}`}. Its earlier results are in the Barrier charts view.`;
  return {
    title: alignmentTitle(a, b),
    ...refs(a, b),
    method: `${method} (${status})`,
    backend: '…',
    seconds: 0,
    iterations: 0,
    objectiveBefore: 0,
    objectiveAfter: 0,
    groups: [],
    heatmaps: [],
    heatmapsNote: status === 'running' ? `Running: ${what}. The heatmaps of this run appear when it finishes.` : note,
    curveNote: note,
  };
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
    title: alignmentTitle(a, b),
    ...refs(a, b),
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
    ...(result.orthogonal ? { orthogonal: orthogonalState(result.orthogonal, result.referenceFolded) } : {}),
  };
}

/** The maps of an orthogonal alignment, one row each (residual stream, then per layer the query/key and value/output maps of each key/value head), with their pictures of |R| when the engine sent them. */
export function orthogonalState(o: NonNullable<AlignResult['orthogonal']>, referenceFolded?: string): OrthogonalState {
  type Map = typeof o.residual;
  const row = (name: string, m: Map) => ({ name, size: m.size, rowMaxMean: m.rowMaxMean, objectiveBefore: m.objectiveBefore, objectiveAfter: m.objectiveAfter, ...(m.picture ? { picture: m.picture } : {}) });
  const heads = (kind: string, l: number, maps: readonly Map[]) => maps.map((m, h) => row(`layer ${l} · ${kind} · head ${h}`, m));
  return {
    maps: [row('residual stream', o.residual), ...o.qk.flatMap((qk, l) => [...heads('QK', l, qk), ...heads('VO', l, o.vo[l] ?? [])])],
    ...(referenceFolded ? { referenceFolded: modelRef(referenceFolded) } : {}),
    untiedHead: o.untiedHead,
  };
}

export function barrierState(a: string, b: string, result: BarrierResult, dataPath?: string): AlignmentState {
  const align = result.align;
  return {
    title: `Re-Basin barrier: ${checkpointNamePair(a, b).join(' ↔ ')}`,
    ...refs(a, b),
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
