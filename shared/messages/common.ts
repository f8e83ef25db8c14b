/** Pieces every view's messages share. */
import * as v from 'valibot';
import { obj } from '../schema/rules';

/** Posted by every webview once its script has started and can receive `init`. */
export const readySchema = obj({ type: v.literal('ready') });

/** Exports a webview may ask the extension to save (CSV text, PNG data URLs). */
export const MAX_EXPORT_CHARS = 64 * 1024 * 1024;

/** A file name suggested by a webview: one path segment, no control characters. */
export const exportName = () =>
  v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(200),
    v.check((s) => !/[\\/\u0000-\u001f]/.test(s) && s !== '.' && s !== '..'),
  );

/** A short identifier (run id, tensor name) sent back by a webview. */
export const shortText = (max: number) => v.pipe(v.string(), v.minLength(1), v.maxLength(max));

/** Save `csv` with a save dialog (suggested file name given). */
export const exportCsvSchema = obj({ type: v.literal('exportCsv'), csv: v.pipe(v.string(), v.maxLength(MAX_EXPORT_CHARS)), suggestedName: exportName() });

/** Save a PNG given as a `data:image/png;base64,...` URL. */
export const exportPngSchema = obj({
  type: v.literal('exportPng'),
  dataUrl: v.pipe(v.string(), v.maxLength(MAX_EXPORT_CHARS), v.startsWith('data:image/png;base64,')),
  suggestedName: exportName(),
});
