/**
 * The alignment panel's content, shared by the VS Code webview (`alignment.entry.ts`) and the
 * demo's standalone report (`report.entry.ts`): run summary, one heatmap per permutation group
 * (tabs), per-group stats, the interpolation (or distance) plot, and CSV/PNG export.
 */
import { barrierChart, distanceChart, enableChartKeyboard, type LineChart } from './charts';
import { csv, fmt, fmtSeconds, h, slug, clear } from './dom';
import { chartPng } from './exportImage';
import { distinctLabels, exportFileName, provenanceText } from './exportName';
import { HeatmapView, type HeatmapUiState } from './heatmapView';
import { HeadsView, headGroupNames, type HeadsUiState } from './headsView';
import { expandBlocks } from '../shared/pixels/heatmapBlocks';
import type { AlignmentState, HeatmapData } from './protocol';
import type { GroupSummary } from './protocol';
import { readTheme, type ThemeColors } from './theme';
import { orthogonalSection } from './orthogonalView';
import { MapPictureView, type MapPictureUiState } from './mapPictureView';

/** What the view asks of its host (webview: post to the extension; report: download). */
export interface AlignmentHost {
  exportCsv(csv: string, suggestedName: string): void;
  exportPng(dataUrl: string, suggestedName: string): void;
  /** Absent in the report (no files to open). */
  openFile?(which: 'a' | 'b' | 'out' | 'aFolded'): void;
}

export interface AlignmentUiState {
  tab: number;
  views: Record<string, HeatmapUiState>;
  /** The "Attention heads" tab: layer shown and the inner permutations' view. */
  heads?: HeadsUiState;
  /** An orthogonal alignment: the map whose picture is shown. */
  orthogonal?: MapPictureUiState;
}

/** The tab that shows every attention layer's head groups (instead of one tab per group). */
const HEADS_TAB = 'Attention heads';

export function defaultUiState(): AlignmentUiState {
  return { tab: 0, views: {} };
}

/** One line per figure the panel shows, as hover text and in "What do these numbers mean?". */
export const DEFINITIONS = {
  barrier:
    'Loss barrier: the largest rise of the loss along the straight path (1−λ)·A + λ·B above the line joining the losses of A (λ = 0) and B (λ = 1). Near 0: no barrier between the two models. "Aligned" is the same path with B\'s units permuted onto A\'s.',
  objective:
    'Matching objective: Σ over the matched weight tensors of ⟨A, π(B)⟩, the similarity of A\'s weights and B\'s weights with B\'s units permuted by π. Before: B as it is (π = identity); after: with the permutations found. Higher is more alike.',
  gain: 'Gain: objective after − objective before (and in percent of before, when before is not tiny next to the change). Positive: the permutation made B more like A.',
} as const;

function gain(g: { objectiveBefore: number; objectiveAfter: number }): string {
  const d = g.objectiveAfter - g.objectiveBefore;
  // A percentage says something only against a before that is not tiny next to the change (random
  // units score about 0 before matching: "+318000%" would read as a measurement).
  const rel = Math.abs(g.objectiveBefore) * 10 >= Math.abs(d) && g.objectiveBefore !== 0 ? ` (${d >= 0 ? '+' : ''}${fmt((100 * d) / Math.abs(g.objectiveBefore), 3)}%)` : '';
  return `${d >= 0 ? '+' : ''}${fmt(d)}${rel}`;
}

export class AlignmentView {
  readonly element: HTMLElement;
  private theme: ThemeColors;
  private chart: LineChart | undefined;
  private readonly chartCanvas: HTMLCanvasElement;
  /** Reads out the chart point the keyboard moved to. */
  private readonly chartAnnouncer: HTMLElement;
  private curveElement: HTMLElement;
  private readonly tabs: HTMLButtonElement[] = [];
  private readonly panel: HTMLElement;
  private heatmap: HeatmapView | undefined;
  private headsView: HeadsView | undefined;
  private readonly mapPicture: MapPictureView | undefined;
  private readonly names: string[];

  constructor(
    private state: AlignmentState,
    private readonly host: AlignmentHost,
    private readonly ui: AlignmentUiState,
    private readonly onUiChange: (ui: AlignmentUiState) => void,
  ) {
    this.theme = readTheme();
    const all = state.heatmaps.length > 0 ? state.heatmaps.map((m) => m.name) : state.groups.map((g) => g.name);
    // Head groups (heads, KV groups, q/k, v/o of every layer) go under one tab, layer by layer.
    const heads = state.heatmaps.length > 0 && state.attention?.length ? headGroupNames(state.attention) : new Set<string>();
    this.names = all.filter((n) => !heads.has(n));
    if (heads.size > 0) this.names.push(HEADS_TAB);
    if (this.ui.tab >= this.names.length) this.ui.tab = 0;
    this.chartCanvas = h('canvas', { class: 'chart', role: 'img' });
    this.chartAnnouncer = h('p', { class: 'sr-only chart-point', 'aria-live': 'polite' });
    enableChartKeyboard(this.chartCanvas, () => this.chart, (text) => (this.chartAnnouncer.textContent = text));
    this.panel = h('div', { class: 'tabpanel', role: 'tabpanel', tabindex: -1 });
    this.curveElement = this.curveSection();
    // An orthogonal alignment: its maps first (it has no heatmaps; its MLP permutations, if any, below).
    this.mapPicture = state.orthogonal ? new MapPictureView(state.orthogonal.maps, this.theme, (this.ui.orthogonal ??= {}), () => this.onUiChange(this.ui)) : undefined;
    const orthogonal = state.orthogonal
      ? orthogonalSection(state.orthogonal, state.title, { exportCsv: (c, n) => this.host.exportCsv(c, n), ...(this.host.openFile ? { openFolded: () => this.host.openFile?.('aFolded') } : {}) }, this.mapPicture)
      : '';
    // Its MLP permutations carry no group summaries: no empty group sections under the maps.
    const groups = state.orthogonal && state.groups.length === 0 ? [] : [this.groupsSection()];
    const table = groups.length > 0 ? this.tableSection() : '';
    this.element = h('main', { class: 'alignment' }, this.header(), orthogonal, ...groups, this.curveElement, table);
    this.selectTab(this.ui.tab, false);
  }

  /** Call after the element is attached (chart.js needs a laid-out canvas). */
  mount(parent: HTMLElement): void {
    parent.append(this.element);
    this.drawChart();
  }

  private fileButton(which: 'a' | 'b' | 'out', label: string, path: string): HTMLElement {
    if (!this.host.openFile) return h('span', { class: 'file', title: path }, label);
    const b = h('button', { type: 'button', class: 'link file', title: path, 'aria-label': `Open ${which === 'out' ? 'output' : 'model ' + which.toUpperCase()}: ${path}` }, label);
    b.addEventListener('click', () => this.host.openFile?.(which));
    return b;
  }

  private header(): HTMLElement {
    const s = this.state;
    const models = h('p', { class: 'models' },
      h('span', { class: 'tag' }, 'A'), this.fileButton('a', s.a.name, s.a.path), ' ',
      h('span', { class: 'tag' }, 'B'), this.fileButton('b', s.b.name, s.b.path),
      s.out ? ' → ' : '', s.out ? this.fileButton('out', s.out.name, s.out.path) : '');
    const facts = h('dl', { class: 'facts' });
    const fact = (k: string, v: string, definition?: string) =>
      facts.append(h('div', {}, h('dt', definition ? { class: 'defined', title: definition } : {}, k), h('dd', definition ? { title: definition } : {}, v)));
    fact('Method', s.orthogonal ? `${s.method} · orthogonal maps` : s.method);
    fact('Backend', s.backend);
    fact('Time', fmtSeconds(s.seconds));
    fact('Iterations', fmt(s.iterations));
    fact('Objective', `${fmt(s.objectiveBefore)} → ${fmt(s.objectiveAfter)}`, DEFINITIONS.objective);
    fact('Gain', gain(s), DEFINITIONS.gain);
    const moved = s.groups.reduce((a, g) => a + g.moved, 0);
    const total = s.groups.reduce((a, g) => a + g.size, 0);
    if (!s.orthogonal || total > 0) fact('Units moved', `${fmt(moved)} of ${fmt(total)}`);
    return h('header', {}, h('h1', {}, s.title), models, facts, definitionsList());
  }

  private groupsSection(): HTMLElement {
    const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Permutation groups' });
    this.names.forEach((name, i) => {
      const t = h('button', { type: 'button', role: 'tab', class: 'tab', id: `tab-${i}`, 'aria-controls': 'group-panel' }, name);
      t.addEventListener('click', () => this.selectTab(i, true));
      t.addEventListener('keydown', (e) => {
        const n = this.names.length;
        let next = -1;
        if (e.key === 'ArrowRight') next = (i + 1) % n;
        else if (e.key === 'ArrowLeft') next = (i + n - 1) % n;
        else if (e.key === 'Home') next = 0;
        else if (e.key === 'End') next = n - 1;
        if (next < 0) return;
        e.preventDefault();
        this.selectTab(next, true);
        this.tabs[next].focus();
      });
      this.tabs.push(t);
      list.append(t);
    });
    this.panel.id = 'group-panel';
    const body = this.names.length === 0 ? h('p', { class: 'empty' }, 'No permutation groups in this run.') : h('div', {}, list, this.panel);
    return h('section', { class: 'groups', 'aria-labelledby': 'groups-h' }, h('h2', { id: 'groups-h' }, 'Permutation groups'), body);
  }

  private selectTab(i: number, user: boolean): void {
    if (this.names.length === 0) return;
    this.ui.tab = i;
    this.tabs.forEach((t, k) => {
      t.setAttribute('aria-selected', String(k === i));
      t.tabIndex = k === i ? 0 : -1;
    });
    this.panel.setAttribute('aria-labelledby', `tab-${i}`);
    clear(this.panel);
    this.heatmap?.dispose();
    this.headsView?.dispose();
    this.headsView = undefined;
    const name = this.names[i];
    if (name === HEADS_TAB && this.state.attention) {
      this.heatmap = undefined;
      const ui = (this.ui.heads ??= { layer: 0, inner: 'perm' });
      this.headsView = new HeadsView(this.state.attention, this.state.heatmaps, this.state.groups, this.theme, ui, this.ui.views, () => this.onUiChange(this.ui));
      this.panel.append(this.headsView.element);
      if (user) this.onUiChange(this.ui);
      return;
    }
    // A per-block group (heads' inner dims) shown in a tab of its own is drawn whole.
    const sent = this.state.heatmaps.find((m) => m.name === name);
    const data: HeatmapData | undefined = sent && expandBlocks(sent);
    const summary: GroupSummary | undefined = this.state.groups.find((g) => g.name === name);
    this.panel.append(this.groupStats(name, summary, data));
    if (data) {
      const ui = (this.ui.views[name] ??= { view: 'after', colormap: 'viridis', mode: 'mean' });
      this.heatmap = new HeatmapView(data, this.theme, ui, () => this.onUiChange(this.ui));
      this.panel.append(this.heatmap.element, this.heatmapExports(name, data));
    } else {
      this.heatmap = undefined;
      this.panel.append(h('p', { class: 'empty' }, this.state.heatmapsNote ?? 'No similarity matrices were kept for this group (runs recorded before heatmaps were stored have none): align again to see them.'));
    }
    if (user) this.onUiChange(this.ui);
  }

  private groupStats(name: string, g: GroupSummary | undefined, data: HeatmapData | undefined): HTMLElement {
    const dl = h('dl', { class: 'facts group-stats', 'aria-label': `Statistics of group ${name}` });
    const fact = (k: string, v: string, definition?: string) =>
      dl.append(h('div', {}, h('dt', definition ? { class: 'defined', title: definition } : {}, k), h('dd', {}, v)));
    const size = g?.size ?? data?.originalSize ?? data?.size;
    fact('Units', fmt(size));
    if (g) {
      fact('Moved', `${fmt(g.moved)} (${fmt((100 * g.moved) / Math.max(1, g.size), 3)}%)`);
      fact('Objective', `${fmt(g.objectiveBefore)} → ${fmt(g.objectiveAfter)}`, DEFINITIONS.objective);
      fact('Gain', gain(g), DEFINITIONS.gain);
    }
    return dl;
  }

  private heatmapExports(name: string, data: HeatmapData): HTMLElement {
    const png = h('button', { type: 'button', class: 'secondary' }, 'Export PNG');
    png.addEventListener('click', () => {
      const hm = this.heatmap;
      if (hm) this.host.exportPng(chartPng(hm.canvas, this.heatmapTitle(name, hm.view), this.theme, 640), exportFileName(this.state, hm.view, 'png', name));
    });
    const cells = h('button', { type: 'button', class: 'secondary' }, 'Matrix CSV');
    cells.addEventListener('click', () => {
      const hm = this.heatmap;
      if (hm) this.host.exportCsv(hm.toCsv(), exportFileName(this.state, hm.view, 'csv', name));
    });
    const perm = h('button', { type: 'button', class: 'secondary' }, 'Permutation CSV');
    perm.addEventListener('click', () => {
      this.host.exportCsv(csv([['position', 'b_unit'], ...data.perm.map((p, i) => [i, p])]), exportFileName(this.state, 'perm', 'csv', name));
    });
    return h('div', { class: 'actions', role: 'group', 'aria-label': 'Export heatmap' }, png, cells, perm);
  }

  private curveSection(): HTMLElement {
    const s = this.state;
    const title = s.curve ? 'Loss along the interpolation path' : 'Weight-space distance along the interpolation path';
    const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Export plot' });
    const png = h('button', { type: 'button', class: 'secondary' }, 'Export PNG');
    png.addEventListener('click', () => this.host.exportPng(chartPng(this.chartCanvas, this.exportTitle(title), this.theme), exportFileName(this.state, s.curve ? 'curve' : 'distance', 'png')));
    const csvBtn = h('button', { type: 'button', class: 'secondary' }, 'Export CSV');
    csvBtn.addEventListener('click', () => this.host.exportCsv(this.curveCsv(), exportFileName(this.state, s.curve ? 'curve' : 'distance', 'csv')));
    actions.append(png, csvBtn);
    let note: HTMLElement | string = '';
    const distanceText = 'the plot shows the distance to A (λ·d) and to B ((1−λ)·d) along the naive and the aligned path.';
    if (!s.curve && s.curveNote) {
      // A note ending in "…" is a curve still being computed; any other says why there is none.
      const meanwhile = s.curveNote.endsWith('…') ? 'Meanwhile' : 'Instead';
      note = h('p', { class: 'hint curve-note', role: 'status' }, s.distance ? `${s.curveNote} ${meanwhile}, ${distanceText}` : s.curveNote);
    } else if (!s.curve && !s.distance) note = h('p', { class: 'empty' }, 'No evaluation data and no distances in this run.');
    else if (!s.curve) note = h('p', { class: 'hint' }, `No evaluation data: ${distanceText}`);
    // A curve with a note is partial: still being computed (the note ends in "…"), or stopped
    // (cancelled, interrupted) with the points computed before kept. Its barriers are those of the points it has.
    const running = s.curveNote?.endsWith('…') === true;
    if (s.curve && s.curveNote) note = h('p', { class: `hint curve-note${running ? '' : ' stopped'}`, role: 'status' }, s.curveNote);
    const barrierLabel = s.curve && s.curveNote ? (running ? 'Barrier so far' : 'Barrier over the points computed') : 'Barrier';
    const barrier = s.curve
      ? h('p', { class: 'barrier' }, h('span', { class: 'defined', title: DEFINITIONS.barrier }, barrierLabel),
        `: naive ${fmt(s.curve.barrier.naive)}` + (s.curve.barrier.aligned !== undefined ? `, aligned ${fmt(s.curve.barrier.aligned)}` : ''))
      : '';
    // Language models: perplexity = exp(loss) at the endpoints and at the worst point of each path.
    const ppl = s.curve?.naive.perplexity;
    const perplexity = s.curve && ppl && ppl.length > 0
      ? h('p', { class: 'perplexity' }, `Perplexity: A ${fmt(ppl[0])}, B ${fmt(ppl[ppl.length - 1])}; highest along the path: naive ${fmt(Math.max(...ppl))}` +
        (s.curve.aligned?.perplexity?.length ? `, aligned ${fmt(Math.max(...s.curve.aligned.perplexity))}` : ''))
      : '';
    this.chartCanvas.setAttribute('aria-label', `${title}. Use the left and right arrow keys to read the points.`);
    const box = s.curve || s.distance ? h('div', { class: 'chart-box' }, this.chartCanvas) : '';
    // What the lines are and which data they are over, under the chart.
    const legend = s.curve
      ? h('p', { class: 'hint chart-key' }, 'Solid lines: loss (left axis)' +
        (s.curve.naive.acc.length === s.curve.lambdas.length ? ' · dashed: accuracy in % (right axis)' : '') +
        (s.curve.naive.perplexity?.length ? ' · dotted: perplexity = exp(loss), on a log scale (right axis)' : '') + '. Red: naive path; blue: B aligned to A.')
      : '';
    const provenance = s.curve
      ? h('p', { class: 'hint provenance' }, s.data ? `Data: ${provenanceText(s.data)}.` : 'Data: not recorded for this run.')
      : s.distance ? h('p', { class: 'hint provenance' }, 'Computed from the weights alone (no data).') : '';
    return h('section', { class: 'curve', 'aria-labelledby': 'curve-h' }, h('h2', { id: 'curve-h' }, title), barrier, perplexity, note, box, legend, provenance,
      this.chartAnnouncer, s.curve || s.distance ? actions : '');
  }

  /** The exported heatmap's title: which group and view, which models, what rows and columns are. */
  private heatmapTitle(group: string, view: string): string[] {
    const [a, b] = distinctLabels(this.state.a, this.state.b);
    const what = view === 'perm' ? 'permutation' : view === 'before' ? 'similarity before alignment' : 'similarity after alignment';
    return [`${group}: ${what}`, `rows: units of A = ${a}; columns: units of B = ${b} · method ${this.state.method}`];
  }

  /** The exported chart's title: what is plotted, for which models, over which data. */
  private exportTitle(what: string): string[] {
    const s = this.state;
    const [a, b] = distinctLabels(s.a, s.b);
    const lines = [`${what}: A = ${a}, B = ${b}`];
    const facts: string[] = [];
    if (s.curve) facts.push(s.data ? `data ${provenanceText(s.data)}` : 'data not recorded');
    if (s.curve) facts.push(`barrier naive ${fmt(s.curve.barrier.naive, 3)}` + (s.curve.barrier.aligned !== undefined ? `, aligned ${fmt(s.curve.barrier.aligned, 3)}` : ''));
    if (s.curveNote && s.curve) facts.push(s.curveNote);
    facts.push(`method ${s.method}`);
    lines.push(facts.join(' · '));
    return lines;
  }

  /**
   * The loss curve arrived (or was given up) after the heatmaps: only the curve section is
   * redrawn, so the heatmap's zoom, view and scroll stay as the user left them.
   */
  setCurve(curve: AlignmentState['curve'], curveNote?: string, data?: AlignmentState['data']): void {
    const { curve: _c, curveNote: _n, data: _d, ...rest } = this.state;
    this.state = { ...rest, ...(curve ? { curve } : {}), ...(curveNote ? { curveNote } : {}), ...(data ?? this.state.data ? { data: data ?? this.state.data } : {}) };
    const next = this.curveSection();
    this.curveElement.replaceWith(next);
    this.curveElement = next;
    this.drawChart();
  }

  /** The state shown, with the latest curve. */
  get currentState(): AlignmentState {
    return this.state;
  }

  private curveCsv(): string {
    const s = this.state;
    if (s.curve) {
      const c = s.curve;
      // Language models add perplexity columns.
      const ppl = c.naive.perplexity !== undefined;
      const rows: (string | number | undefined)[][] = [['lambda', 'naive_loss', 'naive_acc', 'aligned_loss', 'aligned_acc', ...(ppl ? ['naive_perplexity', 'aligned_perplexity'] : [])]];
      c.lambdas.forEach((l, i) => rows.push([l, c.naive.loss[i], c.naive.acc[i], c.aligned?.loss[i], c.aligned?.acc[i], ...(ppl ? [c.naive.perplexity?.[i], c.aligned?.perplexity?.[i]] : [])]));
      return csv(rows);
    }
    const d = s.distance ?? { naive: NaN, aligned: NaN };
    const rows: (string | number)[][] = [['lambda', 'naive_to_a', 'naive_to_b', 'aligned_to_a', 'aligned_to_b']];
    for (let i = 0; i <= 20; i++) {
      const l = i / 20;
      rows.push([l, l * d.naive, (1 - l) * d.naive, l * d.aligned, (1 - l) * d.aligned]);
    }
    return csv(rows);
  }

  private tableSection(): HTMLElement {
    const s = this.state;
    const defined: Record<string, string> = { 'Objective before': DEFINITIONS.objective, 'Objective after': DEFINITIONS.objective, Gain: DEFINITIONS.gain };
    const head = h('tr', {}, ...['Group', 'Units', 'Moved', 'Objective before', 'Objective after', 'Gain'].map((c, i) =>
      h('th', { scope: 'col', class: [i > 0 ? 'num' : '', defined[c] ? 'defined' : ''].filter(Boolean).join(' ') || undefined, title: defined[c] }, c)));
    const body = h('tbody', {});
    for (const g of s.groups) {
      body.append(h('tr', {}, h('th', { scope: 'row' }, g.name), h('td', { class: 'num' }, fmt(g.size)), h('td', { class: 'num' }, fmt(g.moved)),
        h('td', { class: 'num' }, fmt(g.objectiveBefore)), h('td', { class: 'num' }, fmt(g.objectiveAfter)), h('td', { class: 'num' }, gain(g))));
    }
    const btn = h('button', { type: 'button', class: 'secondary' }, 'Export CSV');
    btn.addEventListener('click', () => {
      this.host.exportCsv(csv([['group', 'size', 'moved', 'objective_before', 'objective_after'],
        ...s.groups.map((g) => [g.name, g.size, g.moved, g.objectiveBefore, g.objectiveAfter])]), `${slug(s.title)}-groups.csv`);
    });
    return h('section', { class: 'group-table', 'aria-labelledby': 'table-h' }, h('h2', { id: 'table-h' }, 'All groups'),
      h('table', {}, h('thead', {}, head), body), h('div', { class: 'actions' }, btn));
  }

  private drawChart(): void {
    this.chart?.destroy();
    this.chart = undefined;
    if (this.state.curve) this.chart = barrierChart(this.chartCanvas, this.state.curve, this.theme);
    else if (this.state.distance) this.chart = distanceChart(this.chartCanvas, this.state.distance, this.theme);
  }

  /** Re-reads the theme colours and redraws heatmap and chart. */
  refreshTheme(): void {
    this.theme = readTheme();
    this.heatmap?.setTheme(this.theme);
    this.headsView?.setTheme(this.theme);
    this.mapPicture?.setTheme(this.theme);
    this.drawChart();
  }

  get currentHeatmap(): HeatmapView | undefined {
    return this.heatmap;
  }

  dispose(): void {
    this.heatmap?.dispose();
    this.headsView?.dispose();
    this.chart?.destroy();
    this.element.remove();
  }
}

/** "What do these numbers mean?": the definitions, for keyboard and screen-reader users too (hover text is not). */
function definitionsList(): HTMLElement {
  const dl = h('dl', { class: 'definitions' });
  for (const [term, text] of [['Barrier', DEFINITIONS.barrier], ['Objective', DEFINITIONS.objective], ['Gain', DEFINITIONS.gain]] as const) {
    const body = text.replace(/^[^:]+: /, '');
    dl.append(h('dt', {}, term), h('dd', {}, body[0].toUpperCase() + body.slice(1)));
  }
  return h('details', { class: 'definitions-box' }, h('summary', {}, 'What do these numbers mean?'), dl);
}
