/**
 * What an alignment panel brings back after a window reload (no vscode: unit-tested). The
 * webview keeps `{ui, title, data}` with `setState` (alignment.entry.ts); VS Code hands it to the
 * panel serializer. The data is checked like any message, and a curve that was still being
 * computed is marked as stopped by the reload (its points so far are kept).
 */
import * as v from 'valibot';
import { parseWithFloats } from '../../shared/float32Json';
import { alignmentStateSchema } from '../../shared/messages/alignment';
import type { AlignmentState } from '../../webview/protocol';

/** What the alignment webview persists (alignment.entry.ts `Persisted`). */
export interface PersistedPanel {
  /** The panel's title, to find its run in the history when the data was too large to keep. */
  readonly title?: string;
  /** AlignmentState as JSON with {$f32} typed arrays. */
  readonly data?: string;
}

const CHECKPOINT_PATH = /\.safetensors$|\.safetensors\.index\.json$/i;

/** The title the webview kept, if any. */
export function persistedTitle(saved: unknown): string | undefined {
  const t = typeof saved === 'object' && saved !== null ? (saved as PersistedPanel).title : undefined;
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

/**
 * The panel state the webview kept, or undefined when there is none or it is not a valid state.
 * The panel opens only files named in its state: a kept state whose files are not checkpoints is
 * not trusted.
 */
export function persistedState(saved: unknown): AlignmentState | undefined {
  const data = typeof saved === 'object' && saved !== null ? (saved as PersistedPanel).data : undefined;
  if (typeof data !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = parseWithFloats(data);
  } catch {
    return undefined;
  }
  const r = v.safeParse(alignmentStateSchema, parsed);
  if (!r.success) return undefined;
  const refs = [r.output.a, r.output.b, ...(r.output.out ? [r.output.out] : [])];
  return refs.every((m) => CHECKPOINT_PATH.test(m.path)) ? r.output : undefined;
}

/** A curve still being computed when the window reloaded stays as far as it got, marked as stopped. */
export function afterReload(state: AlignmentState): AlignmentState {
  if (!state.curveNote?.endsWith('…')) return state;
  const n = state.curve?.lambdas.length;
  const note = n ? `Loss curve interrupted by a window reload after ${n} of its λ values; the points computed are kept.` : 'Loss curve interrupted by a window reload.';
  return { ...state, curveNote: note };
}
