/**
 * The data blob of the demo's self-contained `report.html`, and its text encoding. Pure (no DOM,
 * no Node APIs: base64 via the global `btoa`/`atob` both have), so the demo (Node) encodes and
 * `report.entry.ts` (browser) decodes with the same code. Float32Arrays travel as
 * `{"$f32": "<base64 of little-endian bytes>"}` (the one codec: shared/float32Json.ts).
 *
 * Embedding (what `buildReportHtml` does):
 *   <style>  media/webview.css + media/alignment.css + media/report.css  </style>
 *   <script type="application/json" id="report-data"> encodeReportData(data) </script>
 *   <script> contents of dist/webview/report.js </script>
 * `encodeReportData` escapes `<` so the JSON cannot close its script element; the bundle's
 * `</script` sequences are escaped by `escapeInlineScript`.
 */
import { typedArrayReplacer, typedArrayReviver } from '../shared/float32Json';
import type { AlignmentState } from './protocol';

export interface ReportTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number | null)[])[];
  readonly note?: string;
}

export interface ReportData {
  readonly title: string;
  /** ISO 8601 time the report was made. */
  readonly generatedAt: string;
  readonly subtitle?: string;
  /** Drawn with the alignment panel's heatmaps and plot. */
  readonly alignment?: AlignmentState;
  /** Results tables (e.g. barrier per pair, accuracy of merged models, timings). */
  readonly tables?: readonly ReportTable[];
  readonly notes?: readonly string[];
}

/** Files (relative to the extension root) whose contents go into the report's `<style>`. */
export const REPORT_CSS_FILES = ['media/webview.css', 'media/alignment.css', 'media/report.css'] as const;
/** The bundle to inline in the report's `<script>`. */
export const REPORT_SCRIPT_FILE = 'dist/webview/report.js';

/** JSON text safe to place inside `<script type="application/json">`. */
export function encodeReportData(data: ReportData): string {
  return JSON.stringify(data, typedArrayReplacer).replace(/</g, '\\u003c');
}

/** Parses what `encodeReportData` wrote. Shape checks happen in the view (validate.ts). */
export function decodeReportData(text: string): ReportData {
  const v: unknown = JSON.parse(text, typedArrayReviver);
  if (typeof v !== 'object' || v === null || typeof (v as { title?: unknown }).title !== 'string') {
    throw new SyntaxError('report data: expected an object with a string `title`');
  }
  return v as ReportData;
}

/** Makes a script safe to inline: no `</script` can end the element early. */
export function escapeInlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/**
 * The complete self-contained report page. `script` is the text of dist/webview/report.js and
 * `css` the concatenated REPORT_CSS_FILES. No remote content; works from file://.
 */
export function buildReportHtml(data: ReportData, assets: { script: string; css: string }): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
${assets.css.replace(/<\/(style)/gi, '<\\/$1')}
</style>
</head>
<body class="report">
<noscript>This report needs JavaScript to draw its charts.</noscript>
<div id="root"></div>
<script type="application/json" id="report-data">${encodeReportData(data)}</script>
<script>
${escapeInlineScript(assets.script)}
</script>
</body>
</html>
`;
}
