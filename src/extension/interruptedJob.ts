/**
 * A job under way as the run history would record it if a window reload (or a closed window)
 * stopped it: what it was doing on which checkpoints. Pure (no vscode): the journal
 * (jobJournal.ts) stores these while the job runs and turns leftovers into history entries.
 */
import * as path from 'node:path';
import * as v from 'valibot';
import type { EngineRequest } from '../engine/protocol';
import { RUN_KINDS } from '../../shared/messages/barriers';
import { num, obj, str, strArray } from '../../shared/schema/rules';

export const jobEntrySchema = obj({
  kind: v.picklist(RUN_KINDS),
  aPath: str(),
  bPath: str(),
  otherPaths: v.optional(strArray()),
  method: str(),
  /** What was under way, in the user's words ("aligning", "computing the loss curve"). */
  doing: str(),
  /** Date.now() when it started. */
  startedAt: num(),
  /** The extension host's process: a note of a host still alive (another window) is not a leftover. */
  pid: v.optional(num()),
});
export type JobEntry = v.InferOutput<typeof jobEntrySchema>;

/** The entry of a request that makes a run (align, merge, barrier, diff); undefined for the others. */
export function jobOf(request: EngineRequest, now: number, pid?: number): JobEntry | undefined {
  const job = describe(request, now);
  return job && pid !== undefined ? { ...job, pid } : job;
}

function describe(request: EngineRequest, now: number): JobEntry | undefined {
  switch (request.kind) {
    case 'align':
      return { kind: 'align', aPath: request.a, bPath: request.b, method: request.method, doing: 'aligning', startedAt: now };
    case 'barrier':
      // Permutations given: the loss curve of an alignment that has just finished (Align with…).
      return request.perms
        ? { kind: 'align', aPath: request.a, bPath: request.b, method: request.method ?? 'weight', doing: 'computing the loss curve (the alignment had finished)', startedAt: now }
        : { kind: 'barrier', aPath: request.a, bPath: request.b, method: request.align ? (request.method ?? 'weight') : 'none', doing: 'computing the loss curve', startedAt: now };
    case 'merge': {
      const [a, b, ...others] = request.inputs;
      return { kind: 'merge', aPath: a, bPath: b, ...(others.length > 0 ? { otherPaths: others } : {}), method: request.align ? (request.inputs.length > 2 ? 'mergemany' : 'weight') : 'none', doing: 'merging', startedAt: now };
    }
    case 'diff':
      return { kind: 'diff', aPath: request.a, bPath: request.b, method: request.align ? (request.method ?? 'weight') : 'naive', doing: 'comparing', startedAt: now };
    default:
      return undefined;
  }
}

/** A stored journal entry, or undefined when the file is not one (another version, edited by hand). */
export function parseJobEntry(x: unknown): JobEntry | undefined {
  const r = v.safeParse(jobEntrySchema, x);
  return r.success ? r.output : undefined;
}

/** The note of an interrupted run: what it was doing and since when. */
export function interruptedNote(job: JobEntry, locale?: string): string {
  const at = new Date(job.startedAt).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return `Interrupted by a window reload while ${job.doing} (started ${at}); no result was kept.`;
}

/** The history fields of an interrupted job (the history adds id, createdAt, hasPanel). */
export function interruptedRun(job: JobEntry, locale?: string) {
  return {
    kind: job.kind,
    a: path.basename(job.aPath),
    b: path.basename(job.bPath),
    ...(job.otherPaths ? { others: job.otherPaths.map((p) => path.basename(p)), otherPaths: job.otherPaths } : {}),
    aPath: job.aPath,
    bPath: job.bPath,
    method: job.method,
    backend: 'none',
    seconds: 0,
    note: interruptedNote(job, locale),
    interrupted: true,
  };
}
