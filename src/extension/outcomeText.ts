/**
 * Every user-visible sentence that says a file was or was not written, made from what the
 * engine returned (its `written`, `out` and equivalence report) or what is on disk, never from
 * what the command asked for. A unit test checks that no other extension module says "wrote"
 * or "written" itself. No vscode here: the sentences are tested on their own.
 */
import { checkpointName } from '../core/checkpointName';
import { formatLambda, formatNumber } from '../core/numberText';
import type { AlignResult, EquivalenceReport, MergeResult } from '../engine/protocol';

/** What the engine did with the aligned output. */
export type AlignWrite =
  | { readonly written: true; readonly out: string; /** Kept although the equivalence check failed (keep on mismatch): why it failed. */ readonly mismatch?: string }
  | { readonly written: false; readonly requested: string; readonly reason: string; readonly equivalence?: EquivalenceReport };

/** The write outcome of an align result; `requested` is the output the request named. */
export function alignWrite(result: Pick<AlignResult, 'out' | 'written' | 'equivalence'>, requested: string): AlignWrite {
  const e = result.equivalence;
  const failed = e && !e.ok ? e : undefined;
  if (result.written !== false && result.out !== undefined) return { written: true, out: result.out, ...(failed ? { mismatch: equivalenceFailure(failed) } : {}) };
  if (failed) return { written: false, requested, reason: equivalenceFailure(failed), equivalence: failed };
  return { written: false, requested, reason: 'the compute engine reported no output file' };
}

/** "the equivalence check failed on a seeded random batch: π(B) computes … (largest logit difference 17.7, …)". */
export function equivalenceFailure(e: EquivalenceReport): string {
  const batch = e.batch === 'data' ? 'a batch of the evaluation data' : 'a seeded random batch';
  // The engine's message carries the measured difference; without one, say it here.
  const what = e.message?.replace(/^pi\(B\)/, 'π(B)') ?? `π(B) computes a different function than B (largest logit difference ${formatNumber(e.maxAbsDiff)}, ${formatNumber(e.relDiff)} of the largest logit)`;
  return `the equivalence check failed on ${batch}: ${what}`;
}

/** The progress line once the aligned file is on disk and the loss curve starts. */
export function curveStartText(w: Extract<AlignWrite, { written: true }>): string {
  return `${checkpointName(w.out)} written; computing the loss curve`;
}

/** The output channel's line for a finished alignment. */
export function alignLogLine(label: string, result: AlignResult, w: AlignWrite): string {
  const numbers = `${result.iterations} sweeps, objective ${formatNumber(result.objectiveBefore)} → ${formatNumber(result.objectiveAfter)} on ${result.backend}`;
  return w.written ? `${label}: ${numbers}; wrote ${w.out}` : `${label}: ${numbers}; nothing was written: ${w.reason}`;
}

/** How the loss curve after an alignment ended. */
export type CurveEnd = 'done' | 'none' | 'cancelled' | { readonly failed: string };

/** The notification after an alignment, and whether it is a warning. */
export function alignSummary(names: { readonly a: string; readonly b: string }, moved: number, w: AlignWrite, curve: CurveEnd): { readonly text: string; readonly warning: boolean } {
  if (!w.written) {
    return {
      text: `Re-Basin: aligned ${names.b} to ${names.a}, but nothing was written: ${w.reason}. "Write anyway" keeps ${checkpointName(w.requested)} (as the CLI's --keep-on-mismatch does).`,
      warning: true,
    };
  }
  const out = checkpointName(w.out);
  if (w.mismatch) return { text: `Re-Basin: wrote ${out} as asked, although ${w.mismatch}.`, warning: true };
  if (curve === 'cancelled') return { text: `Re-Basin: ${out} written; loss curve cancelled.`, warning: false };
  if (typeof curve === 'object') return { text: `Re-Basin: aligned and wrote ${out}, but the loss curve failed: ${curve.failed}`, warning: true };
  return { text: `Re-Basin: aligned ${names.b} to ${names.a} (${moved} units moved) and wrote ${out}.`, warning: false };
}

/** The history card's and panel's note for an alignment that wrote nothing. */
export function notWrittenNote(w: Extract<AlignWrite, { written: false }>): string {
  return `Nothing written: ${w.reason}.`;
}

/** The history card's note for an output kept although the equivalence check failed. */
export function keptNote(w: Extract<AlignWrite, { written: true }>): string | undefined {
  return w.mismatch ? `Written as asked although ${w.mismatch}.` : undefined;
}

/** The log line when the loss curve was cancelled after the file was written. */
export function curveCancelledLogLine(label: string, w: Extract<AlignWrite, { written: true }>): string {
  return `${label}: ${checkpointName(w.out)} written; loss curve cancelled`;
}

/** A cancelled command: `writtenFile` is the output found on disk, written before the cancel took effect. */
export function cancelledText(what: string, writtenFile?: string): string {
  return writtenFile ? `${what} cancelled after ${checkpointName(writtenFile)} was written` : `${what} cancelled; nothing was written`;
}

/** The notification after a merge, from the engine's result. */
export function mergeSummary(result: MergeResult): string {
  const how = result.method === 'mergemany' ? 'MergeMany' : result.method === 'weight' ? 'weight matching' : 'no alignment';
  return `Re-Basin: merged ${result.inputs.length} checkpoints (${how}, λ=${formatLambda(result.lambda)}) and wrote ${checkpointName(result.out)}.`;
}
