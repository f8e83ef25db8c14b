/**
 * The run history's stored records and their encoding (no vscode: unit-tested on its own). The
 * list of runs is `{version, runs}` JSON; each run's panel state is a JSON file with its
 * Float32Arrays in the one Float32-in-JSON codec (shared/float32Json.ts): an alignment panel's
 * for align and barrier runs, the diff view's for diff runs.
 */
import * as v from 'valibot';
import { parseWithFloats, stringifyWithFloats } from '../../shared/float32Json';
import { alignmentStateSchema } from '../../shared/messages/alignment';
import { diffStateSchema } from '../../shared/messages/diff';
import { runSummaryEntries } from '../../shared/messages/barriers';
import { bool, num, obj, str, strArray, type DeepReadonly } from '../../shared/schema/rules';
import type { AlignmentState, DiffState } from '../../webview/protocol';

/**
 * A run as stored: the side view's summary plus the absolute paths the extension itself chose.
 * A new stored field goes here (optional: lists written by earlier versions lack it).
 */
export const runRecordSchema = obj({
  ...runSummaryEntries,
  aPath: str(),
  bPath: str(),
  otherPaths: v.optional(strArray()),
  outPath: v.optional(str()),
  /** Size and mtime of the output when this run wrote it: a different file there now is a later run's. */
  outStamp: v.optional(obj({ size: num(), mtime: num() })),
  /** A later run wrote the same output: this run's file is gone. */
  replaced: v.optional(bool()),
  /** True when a panel state file was stored for this run. */
  hasPanel: v.optional(bool()),
});
export type RunRecord = DeepReadonly<v.InferOutput<typeof runRecordSchema>>;

/** The list file: `{version, runs}`; runs are checked one by one. */
const runListSchema = obj({ runs: v.array(v.unknown()) });

/**
 * Keeps only well-formed records (the file may be from another version or edited by hand): the
 * same rules the side view applies to a listed run, so a kept record always shows.
 */
export function parseRunList(x: unknown): RunRecord[] {
  const list = v.safeParse(runListSchema, x);
  if (!list.success) return [];
  return list.output.runs.flatMap((r) => {
    const run = v.safeParse(runRecordSchema, r);
    return run.success ? [run.output] : [];
  });
}

// Panel states hold Float32Arrays: stored with the one Float32-in-JSON codec ({$f32: base64}).
export function encodePanel(state: AlignmentState | DiffState): Uint8Array {
  return new TextEncoder().encode(stringifyWithFloats(state));
}

/** Reads a stored panel state; throws when it is not one (the caller warns and shows none). */
export function decodePanel(bytes: Uint8Array): AlignmentState {
  return v.parse(alignmentStateSchema, parseWithFloats(new TextDecoder().decode(bytes)));
}

/** Reads a diff run's stored view state; throws when it is not one. */
export function decodeDiffPanel(bytes: Uint8Array): DiffState {
  return v.parse(diffStateSchema, parseWithFloats(new TextDecoder().decode(bytes)));
}
