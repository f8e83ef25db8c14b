/**
 * The demo's output files, each written atomically: `report.html` (self-contained: the bundled
 * report script and the CSS inlined, the data as a JSON blob, drawn by the same heatmap and chart
 * code as the alignment panel), `curve.png`, `heatmap-<group>-before|after.png`, `summary.json`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AlignResult } from '../engine/protocol';
import { similarityPng } from './heatmapImage';
import { heatmapsOf } from '../extension/heatmaps';
import { expandBlocks } from '../../shared/pixels/heatmapBlocks';
import type { AlignmentState } from '../../webview/protocol';
import { REPORT_CSS_FILES, REPORT_SCRIPT_FILE, buildReportHtml, type ReportData } from '../../webview/reportData';
import { writeFileAtomic } from './atomicWrite';
import { CurvePngError, screenshotCurve } from './curveScreenshot';
import type { DemoSummary } from './summary';
import { reportTables } from './tables';

export interface ReportFiles {
  readonly report: string;
  readonly summary: string;
  /** Absent when no chromium is installed (then `curveSkipped` says why). */
  readonly curve?: string;
  readonly curveSkipped?: string;
  readonly heatmaps: readonly string[];
}

export class DemoReportError extends Error {
  constructor(
    readonly kind: 'AssetMissing',
    message: string,
  ) {
    super(message);
    this.name = 'DemoReportError';
  }
}

/** The package root: dist/demo.js lives in <root>/dist. */
export function packageRoot(): string {
  return path.join(__dirname, '..');
}

async function readAsset(root: string, rel: string): Promise<string> {
  const file = path.join(root, rel);
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    throw new DemoReportError('AssetMissing', `${file}: missing; run npm run build first`);
  }
}

/** File-name-safe form of a permutation group name (`P_layers.0` → `P_layers.0`, `a/b` → `a_b`). */
export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

export function alignmentStateOf(summary: DemoSummary, align: AlignResult, outDir: string): AlignmentState {
  const ref = (p: string) => ({ name: path.relative(outDir, p) || path.basename(p), path: p });
  return {
    title: 'Weight matching: B aligned to A',
    a: ref(summary.models.a),
    b: ref(summary.models.b),
    out: ref(summary.models.alignedB),
    method: align.method,
    backend: align.backend,
    seconds: align.seconds,
    iterations: align.iterations,
    objectiveBefore: align.objectiveBefore,
    objectiveAfter: align.objectiveAfter,
    groups: align.groups,
    heatmaps: heatmapsOf(align),
    curve: summary.curve,
    ...(align.distance ? { distance: align.distance } : {}),
  };
}

/**
 * Writes the images, then the page and summary.json. `finalize` receives the seconds spent so far
 * and returns the summary to embed (so the report's own time appears in its timings table).
 */
export async function writeReport(
  outDir: string,
  draft: DemoSummary,
  align: AlignResult,
  finalize: (reportSeconds: number) => DemoSummary,
  signal?: AbortSignal,
): Promise<ReportFiles & { summaryData: DemoSummary }> {
  const started = performance.now();
  const root = packageRoot();
  const [script, ...css] = await Promise.all([readAsset(root, REPORT_SCRIPT_FILE), ...REPORT_CSS_FILES.map((f) => readAsset(root, f))]);
  const stop = (): void => {
    if (signal?.aborted) throw Object.assign(new Error('report cancelled'), { kind: 'Cancelled' });
  };

  const heatmaps: string[] = [];
  for (const m of (align.matrices ?? []).map((x) => expandBlocks(x))) {
    for (const which of ['before', 'after'] as const) {
      stop();
      // Small demo widths get scaled up so the image is at least ~512 pixels wide.
      const img = similarityPng(m[which], m.size, { scale: Math.max(1, Math.floor(512 / m.size)) });
      const file = path.join(outDir, `heatmap-${safeName(m.name)}-${which}.png`);
      await writeFileAtomic(file, img.png);
      heatmaps.push(file);
    }
  }

  const pageOf = (summary: DemoSummary): string => buildReportHtml({
    title: 'Re-Basin demo: two MNIST MLPs, aligned and merged',
    subtitle: `${summary.setup.widths.join('-')} ReLU, ${summary.setup.epochs} epoch(s), seeds ${summary.setup.seeds.join(' and ')}, backend ${summary.backend}`,
    generatedAt: new Date().toISOString(),
    alignment: alignmentStateOf(summary, align, outDir),
    tables: reportTables(summary),
    notes: [
      'Git Re-Basin (Ainsworth, Hayase & Srinivasa, ICLR 2023): permuting the hidden units of B to match A (weight matching) removes the loss barrier on the straight line between two independently trained MLPs.',
    ],
  } satisfies ReportData, { script, css: css.join('\n') });

  // curve.png is screenshotted from a draft of the page (same chart), so the final page can
  // report the time of the whole report step, image included.
  stop();
  let curve: string | undefined;
  let curveSkipped: string | undefined;
  const draftPage = path.join(outDir, `.report-draft-${process.pid}.html`);
  try {
    await writeFileAtomic(draftPage, pageOf(draft));
    curve = path.join(outDir, 'curve.png');
    await screenshotCurve(draftPage, curve);
  } catch (e) {
    // The image is a convenience beside report.html (which has the same chart): a missing or
    // failing browser skips it with the reason instead of failing the demo.
    curve = undefined;
    curveSkipped = e instanceof CurvePngError ? e.message : `curve.png not written: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  } finally {
    await fs.rm(draftPage, { force: true });
  }

  stop();
  const summary = finalize((performance.now() - started) / 1000);
  const report = path.join(outDir, 'report.html');
  await writeFileAtomic(report, pageOf(summary));

  stop();
  const summaryFile = path.join(outDir, 'summary.json');
  await writeFileAtomic(summaryFile, JSON.stringify(summary, null, 2) + '\n');
  return { summaryData: summary, report, summary: summaryFile, heatmaps, ...(curve ? { curve } : {}), ...(curveSkipped ? { curveSkipped } : {}) };
}
