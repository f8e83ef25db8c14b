/**
 * Messages of the barrier side view (the run list). webview/protocol.ts takes its types from
 * here; the extension's stored run records (src/extension/runHistory.ts) extend `runSummaryEntries`.
 * A new field of a listed run goes into `runSummaryEntries` (optional: stored records of older
 * versions lack it).
 */
import * as v from 'valibot';
import { bool, num, obj, str, strArray } from '../schema/rules';
import { barrierCurveSchema } from '../schema/results';
import { readySchema, shortText } from './common';

export const RUN_KINDS = ['align', 'merge', 'barrier', 'diff'] as const;

export const runSummaryEntries = {
  id: str(),
  kind: v.picklist(RUN_KINDS, 'must be align, merge, barrier or diff'),
  /** Display names of the two models (merge: reference and first other). */
  a: str(),
  b: str(),
  others: v.optional(strArray()),
  method: str(),
  /** ISO 8601 time. */
  createdAt: str(),
  backend: str(),
  seconds: num(),
  barrier: v.optional(obj({ naive: num(), aligned: v.optional(num()) })),
  curve: v.optional(barrierCurveSchema),
  out: v.optional(str()),
  /** Why an align run has no curve ("Loss curve cancelled."). */
  note: v.optional(str()),
  /** B's folder relative to the workspace ('' at the top): tells apart runs of same-named files. */
  folder: v.optional(str()),
  /** The seed of the run's weight matching / merge. */
  seed: v.optional(num()),
  /** A job a window reload stopped (recorded at the next activation): `note` says what it was doing. */
  interrupted: v.optional(bool()),
  /** A diff run's total relative change ||A−B|| / ||A||, naive and (aligned) against π(B); null when ||A|| is 0. */
  change: v.optional(obj({ naive: v.nullable(num()), aligned: v.optional(v.nullable(num())) })),
};

export const runSummarySchema = obj(runSummaryEntries);

export const barriersStateSchema = obj({
  runs: v.array(runSummarySchema, 'must be an array'),
  /** False in Restricted Mode: the commands that make runs are hidden, so the empty state says how to trust the folder. */
  trusted: v.optional(bool()),
});

/** Extension → barrier side view, by `type`. */
export const TO_BARRIERS = {
  init: obj({ type: v.literal('init'), state: barriersStateSchema }),
  update: obj({ type: v.literal('update'), state: barriersStateSchema }),
} as const;

/** Barrier side view → extension. */
export const fromBarriersSchema = v.variant('type', [
  readySchema,
  obj({ type: v.literal('openRun'), id: shortText(100) }),
  obj({ type: v.literal('deleteRun'), id: shortText(100) }),
  obj({ type: v.literal('clearRuns') }),
  /** Restricted Mode: open VS Code's workspace trust editor. */
  obj({ type: v.literal('manageTrust') }),
]);
