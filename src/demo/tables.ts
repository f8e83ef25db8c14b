/**
 * The demo's results as rows: printed in the terminal with `table()` (src/cli/format.ts) and
 * embedded in the report as ReportTables, from the same row builders.
 */
import { table } from '../cli/format';
import type { ReportTable } from '../../webview/reportData';
import type { DemoSummary } from './summary';

const lam = (l: number): string => `λ=${Number(l.toFixed(3))}`;

export function modelRows(s: DemoSummary): [string, number, number][] {
  const r = s.results;
  return [
    [`A (seed ${s.setup.seeds[0]})`, r.a.loss, r.a.acc],
    [`B (seed ${s.setup.seeds[1]})`, r.b.loss, r.b.acc],
    [`naive midpoint (${lam(r.naiveMidpoint.lambda)})`, r.naiveMidpoint.loss, r.naiveMidpoint.acc],
    [`aligned midpoint (${lam(r.alignedMidpoint.lambda)})`, r.alignedMidpoint.loss, r.alignedMidpoint.acc],
    [`merge (${lam(r.merge.lambda)}, aligned)`, r.merge.loss, r.merge.acc],
  ];
}

export const TIMING_ORDER = ['train', 'align', 'barrier', 'merge', 'report'] as const;

/** [label, seconds]; seconds is undefined for a step that did not run (training skipped: cached). */
function timingRows(s: DemoSummary): [string, number | undefined][] {
  const rows: [string, number | undefined][] = TIMING_ORDER.filter((k) => s.timings[k] !== undefined || k === 'train').map((k) => [k === 'train' ? `train (${trainNote(s)})` : k, s.timings[k]]);
  rows.push(['total', s.totalSeconds]);
  return rows;
}

const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : String(v));

function trainNote(s: DemoSummary): string {
  const [ta, tb] = s.models.trained;
  if (ta && tb) return 'trained both models';
  if (!ta && !tb) return 'both models cached; --retrain to train again';
  return `${ta ? 'trained A' : 'A from the cache'}, ${tb ? 'trained B' : 'B from the cache'}`;
}

export function referenceNote(s: DemoSummary): string {
  return `Reference (notes/COMPUTE.md, same MLP trained ${s.setup.referenceEpochs} epochs): test barrier naive ≈ 0.80, aligned ≈ 0.00. This run trained ${s.setup.epochs} epoch${s.setup.epochs === 1 ? '' : 's'}.`;
}

/** The terminal summary printed at the end of `npm run demo`. */
export function terminalReport(s: DemoSummary): string {
  const f4 = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : String(v));
  const models = table(['test set', 'loss', 'accuracy'], modelRows(s).map(([n, l, a]) => [n, f4(l), pct(a)]));
  const barriers = table(['loss barrier (test)', 'value'], [
    ['naive (A to B)', f4(s.barrier.naive)],
    ['aligned (A to π(B), weight matching)', f4(s.barrier.aligned)],
  ]);
  const timings = table(['step', 'seconds'], timingRows(s).map(([k, v]) => [k, v === undefined ? '-' : v.toFixed(1)]));
  return [
    models,
    '',
    barriers,
    referenceNote(s),
    '',
    timings,
    `backend: ${s.backend}, ${s.workers} worker${s.workers === 1 ? '' : 's'}`,
  ].join('\n');
}

/** The same tables for report.html. */
export function reportTables(s: DemoSummary): ReportTable[] {
  return [
    { title: 'Test loss and accuracy', columns: ['model', 'loss', 'accuracy'], rows: modelRows(s).map(([n, l, a]) => [n, l, pct(a)]) },
    {
      title: 'Loss barriers (test set)',
      columns: ['path', 'barrier'],
      rows: [['naive: A to B', s.barrier.naive], ['aligned: A to π(B)', s.barrier.aligned]],
      note: referenceNote(s),
    },
    {
      title: 'Timings',
      columns: ['step', 'seconds'],
      rows: timingRows(s).map(([k, v]) => [k, v === undefined ? null : Number(v.toFixed(2))]),
      note: `Backend ${s.backend}, ${s.workers} worker${s.workers === 1 ? '' : 's'}.`,
    },
  ];
}
