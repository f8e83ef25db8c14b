/**
 * Messages of the diff view ("Compare with…"): extension → webview `init` with the diff result
 * (and, after "Scan for problems", the scan of A), and a chosen tensor's picture (`tensor`, or
 * `tensorError`); webview → extension `ready`, `showTensor`, `scan` and the CSV / PNG exports.
 * webview/protocol.ts takes its types from here.
 */
import * as v from 'valibot';
import { diffResultSchema, scanResultSchema, tensorPictureSchema } from '../schema/diff';
import { obj, str } from '../schema/rules';
import { exportCsvSchema, exportPngSchema, readySchema, shortText } from './common';
import { modelRefSchema } from './alignment';

export const diffStateSchema = obj({
  title: str(),
  a: modelRefSchema,
  b: modelRefSchema,
  result: diffResultSchema,
  /** Health scans of A and B: their flagged tensors are marked in the table. */
  scanA: v.optional(scanResultSchema),
  scanB: v.optional(scanResultSchema),
  /** The model config the alignment used (rebasin.modelConfig), for drawing a tensor of π(B) with the same spec. */
  model: v.optional(str()),
});

/** Extension → diff view. */
export const TO_DIFF = {
  init: obj({ type: v.literal('init'), state: diffStateSchema }),
  /** The picture of the tensor `showTensor` asked for. */
  tensor: obj({ type: v.literal('tensor'), picture: tensorPictureSchema }),
  tensorError: obj({ type: v.literal('tensorError'), tensor: str(), message: str() }),
} as const;

/** Diff view → extension. */
export const fromDiffSchema = v.variant('type', [
  readySchema,
  exportCsvSchema,
  exportPngSchema,
  /** Run the health scan on both checkpoints and send `init` again with `scanA` / `scanB`. */
  obj({ type: v.literal('scan') }),
  /** Draw this 2-D (or higher) tensor: histograms of A and B (π(B) when aligned) and |A−B|. */
  obj({ type: v.literal('showTensor'), tensor: shortText(4000) }),
]);
