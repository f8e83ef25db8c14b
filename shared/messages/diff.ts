/**
 * Messages of the diff view ("Compare with…"): extension → webview `init` with the diff result
 * (and, after "Scan for problems", the scan of A), webview → extension `ready` and the CSV / PNG
 * exports. webview/protocol.ts takes its types from here.
 */
import * as v from 'valibot';
import { diffResultSchema, scanResultSchema } from '../schema/diff';
import { obj, str } from '../schema/rules';
import { exportCsvSchema, exportPngSchema, readySchema } from './common';
import { modelRefSchema } from './alignment';

export const diffStateSchema = obj({
  title: str(),
  a: modelRefSchema,
  b: modelRefSchema,
  result: diffResultSchema,
  /** Health scans of A and B: their flagged tensors are marked in the table. */
  scanA: v.optional(scanResultSchema),
  scanB: v.optional(scanResultSchema),
});

/** Extension → diff view. */
export const TO_DIFF = {
  init: obj({ type: v.literal('init'), state: diffStateSchema }),
} as const;

/** Diff view → extension. */
export const fromDiffSchema = v.variant('type', [
  readySchema,
  exportCsvSchema,
  exportPngSchema,
  /** Run the health scan on both checkpoints and send `init` again with `scanA` / `scanB`. */
  obj({ type: v.literal('scan') }),
]);
