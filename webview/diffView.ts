/**
 * The diff view: totals (naive and, after alignment, for π(B)), a per-layer bar chart of relative
 * change naive vs aligned, and a sortable, filterable table of every tensor (shared tensors with
 * their figures, tensors only in A or only in B), with the health scan's flags when it has run.
 * Exports the table (as filtered and sorted) as CSV and the chart as PNG. Clicking the row of a
 * tensor with two or more axes asks the extension for its picture (histograms and |A−B|).
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import { append, csv, fmt, h, slug } from './dom';
import type { DiffState, ScanResult, TensorPicture } from './protocol';
import { tensorPictureNote, tensorPictureSection } from './tensorPictureView';
import { readTheme, withAlpha } from './theme';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** One table row: a tensor in both (figures), or in one side only. */
export interface DiffRow {
  readonly name: string;
  readonly shape: string;
  readonly dtype: string;
  readonly side: 'both' | 'A' | 'B';
  /** Axes of a compared tensor (rows of ≥ 2 axes can be drawn). */
  readonly rank?: number;
  readonly relative?: number;
  readonly cosine?: number;
  readonly maxAbs?: number;
  readonly alignedRelative?: number;
  readonly alignedCosine?: number;
  readonly flags: string;
}

export type SortKey = 'name' | 'shape' | 'relative' | 'cosine' | 'alignedRelative' | 'alignedCosine' | 'maxAbs' | 'flags';
export type Show = 'all' | 'onlyA' | 'onlyB' | 'flagged';

export interface DiffUiState {
  sort: SortKey;
  descending: boolean;
  /** Rows whose relative change (naive, in %) is at most this are hidden; 0 shows all. */
  minPercent: number;
  show: Show;
}

export function defaultDiffUi(): DiffUiState {
  return { sort: 'relative', descending: true, minPercent: 0, show: 'all' };
}

const num = (x: number | null | undefined): number | undefined => (x === null || x === undefined ? undefined : x);

function scanFlags(scan: ScanResult | undefined, side: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of scan?.tensors ?? []) if (t.flags.length) out.set(t.name, `${side}: ${t.flags.join(', ')}`);
  return out;
}

/** Every row of the table, in the result's order. */
export function diffRows(state: DiffState): DiffRow[] {
  const r = state.result;
  const aligned = new Map((r.aligned?.tensors ?? []).map((t) => [t.name, t]));
  const flagsA = scanFlags(state.scanA, 'A');
  const flagsB = scanFlags(state.scanB, 'B');
  const flags = (name: string): string => [flagsA.get(name), flagsB.get(name)].filter(Boolean).join('; ');
  const rows: DiffRow[] = r.tensors.map((t) => ({
    name: t.name,
    shape: `[${t.shape.join(', ')}]`,
    dtype: t.dtypeB ? `${t.dtype} / ${t.dtypeB}` : t.dtype,
    side: 'both',
    rank: t.shape.length,
    relative: num(t.relative),
    cosine: num(t.cosine),
    maxAbs: t.maxAbs,
    alignedRelative: num(aligned.get(t.name)?.relative),
    alignedCosine: num(aligned.get(t.name)?.cosine),
    flags: flags(t.name),
  }));
  for (const m of r.mismatches.filter((x) => !x.compared)) {
    rows.push({ name: m.name, shape: `[${m.shapeA.join(', ')}] / [${m.shapeB.join(', ')}]`, dtype: m.dtypeA === m.dtypeB ? m.dtypeA : `${m.dtypeA} / ${m.dtypeB}`, side: 'both', flags: flags(m.name) || 'shape differs' });
  }
  for (const name of r.onlyInA) rows.push({ name, shape: '', dtype: '', side: 'A', flags: flags(name) });
  for (const name of r.onlyInB) rows.push({ name, shape: '', dtype: '', side: 'B', flags: flags(name) });
  return rows;
}

/** The rows the filter keeps, sorted (rows without the sort figure last, whatever the direction). */
export function visibleRows(rows: readonly DiffRow[], ui: DiffUiState): DiffRow[] {
  const kept = rows.filter((row) => {
    if (ui.show === 'onlyA') return row.side === 'A';
    if (ui.show === 'onlyB') return row.side === 'B';
    if (ui.show === 'flagged' && !row.flags) return false;
    if (ui.minPercent > 0) return row.relative !== undefined && row.relative * 100 > ui.minPercent;
    return true;
  });
  const key = ui.sort;
  const sign = ui.descending ? -1 : 1;
  return kept.sort((x, y) => {
    const a = x[key];
    const b = y[key];
    if (a === undefined || a === '') return b === undefined || b === '' ? 0 : 1;
    if (b === undefined || b === '') return -1;
    return sign * (typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b)));
  });
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${fmt(100 * x, 3)}%`);

const COLUMNS: readonly { key: SortKey; label: string; aligned?: true; numeric?: true }[] = [
  { key: 'name', label: 'Tensor' },
  { key: 'shape', label: 'Shape' },
  { key: 'relative', label: 'Relative change', numeric: true },
  { key: 'cosine', label: 'Cosine', numeric: true },
  { key: 'alignedRelative', label: 'Aligned relative', aligned: true, numeric: true },
  { key: 'alignedCosine', label: 'Aligned cosine', aligned: true, numeric: true },
  { key: 'maxAbs', label: 'max |A−B|', numeric: true },
  { key: 'flags', label: 'Flags' },
];

export interface DiffViewActions {
  exportCsv(csv: string, suggestedName: string): void;
  exportPng(dataUrl: string, suggestedName: string): void;
  scan(): void;
  /** Ask for a tensor's picture (answered by `showPicture` or `showPictureError`). */
  showTensor(name: string): void;
}

export class DiffView {
  private readonly rows: DiffRow[];
  private chart: Chart<'bar'> | undefined;
  private readonly tbody = h('tbody');
  private readonly thead = h('thead');
  private readonly count = h('span', { class: 'count', role: 'status' });
  private readonly canvas = h('canvas', { class: 'layer-chart', 'aria-label': 'Relative change per layer, naive and aligned' });
  private readonly picture = h('div', { class: 'picture-slot' }, h('p', { class: 'hint' }, 'Click the row of a matrix (2 or more axes) to see its histograms in A and B and where they differ.'));
  private selected: string | undefined;

  constructor(
    private readonly state: DiffState,
    private readonly actions: DiffViewActions,
    private readonly ui: DiffUiState,
    private readonly onUi: (ui: DiffUiState) => void,
  ) {
    this.rows = diffRows(state);
  }

  mount(root: HTMLElement): void {
    const r = this.state.result;
    const al = r.aligned;
    const totals = h('p', { class: 'totals' },
      h('strong', {}, 'Naive: '), `relative change ${pct(num(r.totals.relative))}, cosine ${fmt(num(r.totals.cosine))}, ||A−B|| ${fmt(r.totals.l2)}`,
      al ? h('br') : null,
      al ? h('strong', {}, `Aligned (${al.method} matching): `) : null,
      al ? `relative change ${pct(num(al.totals.relative))}, cosine ${fmt(num(al.totals.cosine))}, ||A−π(B)|| ${fmt(al.totals.l2)}` : null,
      al && r.totals.l2 > 0 ? h('br') : null,
      al && r.totals.l2 > 0 ? h('span', { class: 'explained' }, `Alignment removes ${fmt(100 * (1 - al.totals.l2 / r.totals.l2), 3)}% of the distance (units moved: ${al.permutations.reduce((s, p) => s + p.moved, 0).toLocaleString('en-US')} of ${al.permutations.reduce((s, p) => s + p.size, 0).toLocaleString('en-US')}).`) : null,
    );
    const minInput = h('input', { type: 'number', min: 0, step: 'any', value: this.ui.minPercent, class: 'min-percent', 'aria-label': 'Changed more than (%)' });
    minInput.addEventListener('input', () => {
      const v = Number(minInput.value);
      this.ui.minPercent = Number.isFinite(v) && v > 0 ? v : 0;
      this.renderRows();
    });
    const show = h('select', { class: 'show', 'aria-label': 'Show' },
      ...([['all', 'All tensors'], ['onlyA', `Only in A (${r.onlyInA.length})`], ['onlyB', `Only in B (${r.onlyInB.length})`], ['flagged', 'Flagged by the scan']] as const).map(([v, label]) =>
        h('option', { value: v, selected: this.ui.show === v }, label)),
    );
    show.addEventListener('change', () => {
      this.ui.show = show.value as Show;
      this.renderRows();
    });
    const scanButton = h('button', { class: 'scan', title: 'Statistics of every tensor of A and B: NaN, Inf, all-zero, constant or extreme tensors are flagged' }, this.state.scanA ? 'Scan again' : 'Scan for problems');
    scanButton.addEventListener('click', () => this.actions.scan());
    const csvButton = h('button', { class: 'export-csv' }, 'Export CSV');
    csvButton.addEventListener('click', () => this.actions.exportCsv(this.csv(), `${slug(this.state.title)}.csv`));
    const pngButton = h('button', { class: 'export-png' }, 'Export chart PNG');
    pngButton.addEventListener('click', () => this.actions.exportPng(this.canvas.toDataURL('image/png'), `${slug(this.state.title)}-layers.png`));
    const scanNote = this.scanNote();
    append(
      root,
      h('h1', {}, this.state.title),
      h('p', { class: 'models' }, h('span', { class: 'tag' }, 'A'), h('span', { class: 'file' }, this.state.a.name), h('span', { class: 'tag' }, 'B'), h('span', { class: 'file' }, this.state.b.name)),
      totals,
      h('p', { class: 'summary' }, `${r.tensors.length} tensors compared · only in A: ${r.onlyInA.length} · only in B: ${r.onlyInB.length} · shape or dtype differs: ${r.mismatches.length}`),
      scanNote,
      h('div', { class: 'chart-box' }, this.canvas),
      this.picture,
      h('div', { class: 'toolbar' }, h('label', {}, 'Changed more than ', minInput, ' %'), show, this.count, scanButton, csvButton, pngButton),
      h('table', { class: 'diff-table' }, this.thead, this.tbody),
    );
    this.renderHead();
    this.renderRows();
    this.renderChart();
  }

  private scanNote(): HTMLElement | null {
    const { scanA, scanB } = this.state;
    if (!scanA && !scanB) return null;
    const part = (side: string, s: ScanResult | undefined): string => (s ? `${side}: ${s.flagged} of ${s.tensors.length} tensors flagged` : '');
    return h('p', { class: 'scan-note' }, `Scan: ${[part('A', scanA), part('B', scanB)].filter(Boolean).join(' · ')} (NaN, Inf, all-zero, constant; extreme: max |x| > ${fmt((scanA ?? scanB)!.rule.extremeAbs)} or std > ${(scanA ?? scanB)!.rule.extremeStdRatio} × the median std)`);
  }

  private columns(): typeof COLUMNS {
    return COLUMNS.filter((c) => !c.aligned || this.state.result.aligned);
  }

  private renderHead(): void {
    this.thead.textContent = '';
    const tr = h('tr');
    for (const c of this.columns()) {
      const sorted = this.ui.sort === c.key;
      const th = h('th', { 'data-key': c.key, 'aria-sort': sorted ? (this.ui.descending ? 'descending' : 'ascending') : 'none', class: c.numeric ? 'num' : undefined }, h('button', { class: 'sort' }, c.label, sorted ? (this.ui.descending ? ' ▼' : ' ▲') : ''));
      th.addEventListener('click', () => {
        if (this.ui.sort === c.key) this.ui.descending = !this.ui.descending;
        else {
          this.ui.sort = c.key;
          this.ui.descending = c.numeric === true;
        }
        this.renderHead();
        this.renderRows();
      });
      tr.append(th);
    }
    this.thead.append(tr);
  }

  private cell(row: DiffRow, key: SortKey): string {
    switch (key) {
      case 'relative':
      case 'alignedRelative':
        return row.side !== 'both' ? `only in ${row.side}` : pct(row[key]);
      case 'cosine':
      case 'alignedCosine':
      case 'maxAbs':
        return fmt(row[key]);
      default:
        return row[key];
    }
  }

  private renderRows(): void {
    this.onUi(this.ui);
    const rows = visibleRows(this.rows, this.ui);
    this.tbody.textContent = '';
    const cols = this.columns();
    for (const row of rows) {
      const drawable = row.side === 'both' && (row.rank ?? 0) >= 2;
      const classes = [row.flags ? 'flagged' : '', drawable ? 'drawable' : '', row.name === this.selected ? 'selected' : ''].filter(Boolean).join(' ');
      const tr = h('tr', { 'data-name': row.name, class: classes || undefined, title: drawable ? 'Click: histograms and |A−B| of this tensor' : undefined }, ...cols.map((c) => h('td', { class: c.numeric ? 'num' : undefined }, this.cell(row, c.key))));
      if (drawable) tr.addEventListener('click', () => this.choose(row.name));
      this.tbody.append(tr);
    }
    this.count.textContent = `${rows.length} of ${this.rows.length} tensors`;
  }

  private choose(name: string): void {
    this.selected = name;
    for (const tr of this.tbody.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    this.tbody.querySelector(`tr[data-name="${CSS.escape(name)}"]`)?.classList.add('selected');
    this.picture.replaceChildren(tensorPictureNote(name, `Drawing ${name}…`));
    this.actions.showTensor(name);
  }

  /** Shows the picture the extension sent (if it is still the chosen tensor's). */
  showPicture(p: TensorPicture): void {
    if (p.tensor !== this.selected) return;
    this.picture.replaceChildren(tensorPictureSection(p, this.state.result.aligned?.perms !== undefined));
  }

  showPictureError(tensor: string, message: string): void {
    if (tensor !== this.selected) return;
    this.picture.replaceChildren(tensorPictureNote(tensor, `Could not draw ${tensor}: ${message}`, true));
  }

  /** The table as shown (filter and order), figures unrounded. */
  csv(): string {
    const cols = this.columns();
    return csv([['tensor', 'shape', 'dtype', 'side', ...cols.slice(2).map((c) => c.label)], ...visibleRows(this.rows, this.ui).map((row) => [row.name, row.shape, row.dtype, row.side, ...cols.slice(2).map((c) => row[c.key])])]);
  }

  private renderChart(): void {
    this.chart?.destroy();
    const theme = readTheme();
    const r = this.state.result;
    const aligned = new Map((r.aligned?.layers ?? []).map((l) => [l.name, l]));
    const font = { family: theme.fontFamily, size: 11 };
    const datasets = [
      { label: 'naive: ||A−B|| / ||A||', data: r.layers.map((l) => 100 * (num(l.relative) ?? 0)), backgroundColor: withAlpha(theme.red, 0.75), borderColor: theme.red },
      ...(r.aligned ? [{ label: 'aligned: ||A−π(B)|| / ||A||', data: r.layers.map((l) => 100 * (num(aligned.get(l.name)?.relative) ?? 0)), backgroundColor: withAlpha(theme.blue, 0.75), borderColor: theme.blue }] : []),
    ];
    this.chart = new Chart(this.canvas, {
      type: 'bar',
      data: { labels: r.layers.map((l) => l.name), datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        color: theme.foreground,
        plugins: {
          legend: { position: 'bottom', labels: { color: theme.foreground, font } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label ?? ''}: ${fmt(c.parsed.y ?? NaN, 3)}%` } },
        },
        scales: {
          x: { ticks: { color: theme.foreground, font, autoSkip: true, maxRotation: 60 }, grid: { color: theme.grid } },
          y: { beginAtZero: true, title: { display: true, text: 'relative change (%)', color: theme.foreground, font }, ticks: { color: theme.foreground, font }, grid: { color: theme.grid } },
        },
      },
    });
  }

  refreshTheme(): void {
    this.renderChart();
  }

  /** Chart data, for tests: labels and the datasets' values. */
  chartData(): { labels: string[]; datasets: { label: string; data: number[] }[] } {
    const d = this.chart?.data;
    return { labels: (d?.labels ?? []).map(String), datasets: (d?.datasets ?? []).map((s) => ({ label: s.label ?? '', data: s.data as number[] })) };
  }

  dispose(): void {
    this.chart?.destroy();
  }
}
