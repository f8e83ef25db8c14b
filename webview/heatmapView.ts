/**
 * One permutation group's heatmap: three views (permutation matrix, similarity before, similarity
 * after), drawn straight into a canvas `ImageData` (no per-cell DOM) after block downsampling to
 * at most 1024 cells per side, with pixelated zoom (wheel, buttons, +/- keys) and a hover tooltip
 * naming the A and B unit indices and the value.
 */
import { binary, colormap, type ColormapName } from '../shared/pixels/colormap';
import { h, fmt } from './dom';
import { renderMatrix, renderPermutation, type BlockMode, type RenderedHeatmap } from '../shared/pixels/heatmap';
import type { HeatmapData } from './protocol';
import type { ThemeColors } from './theme';

export type HeatmapKind = 'perm' | 'before' | 'after';

export interface HeatmapUiState {
  view: HeatmapKind;
  zoom?: number;
  colormap: ColormapName;
  mode: BlockMode;
}

const VIEW_LABELS: Record<HeatmapKind, string> = {
  perm: 'Permutation',
  before: 'Similarity before',
  after: 'Similarity after',
};

const ZOOM_STEPS = [0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32];
/** CSS pixels the heatmap fits into before it is laid out (then: the panel's width and 70% of its height). */
const FIT_PX = 512;
/** Share of the panel's height the heatmap's scroller may take (its CSS max-height is 70vh). */
const FIT_HEIGHT_SHARE = 0.7;

export class HeatmapView {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly tooltip: HTMLElement;
  private readonly legendMin: HTMLElement;
  private readonly legendMax: HTMLElement;
  private readonly legendBar: HTMLCanvasElement;
  private readonly zoomLabel: HTMLElement;
  private readonly viewButtons = new Map<HeatmapKind, HTMLButtonElement>();
  private readonly scroller: HTMLElement;
  private rendered: RenderedHeatmap | undefined;
  /** Cell last hovered or reached with the arrow keys. */
  private cursor: [number, number] | undefined;
  private theme: ThemeColors;
  /** Milliseconds the last render took (downsample + colour + putImageData). */
  lastRenderMs = 0;

  constructor(
    private readonly data: HeatmapData,
    theme: ThemeColors,
    private readonly ui: HeatmapUiState,
    private readonly onUiChange: () => void,
  ) {
    this.theme = theme;
    const id = `hm-${Math.random().toString(36).slice(2, 8)}`;
    const views = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': `${data.name}: matrix shown` });
    for (const kind of ['perm', 'before', 'after'] as const) {
      const b = h('button', { type: 'button', class: 'seg', role: 'radio', 'data-view': kind }, VIEW_LABELS[kind]);
      b.addEventListener('click', () => this.setView(kind));
      b.addEventListener('keydown', (e) => this.onRadioKey(e, kind));
      this.viewButtons.set(kind, b);
      views.append(b);
    }
    const zoomOut = h('button', { type: 'button', class: 'icon', 'aria-label': 'Zoom out', title: 'Zoom out (-)' }, '−');
    const zoomIn = h('button', { type: 'button', class: 'icon', 'aria-label': 'Zoom in', title: 'Zoom in (+)' }, '+');
    const zoomFit = h('button', { type: 'button', class: 'icon', 'aria-label': 'Fit to view', title: 'Fit (0)' }, 'Fit');
    this.zoomLabel = h('span', { class: 'zoom-label', 'aria-live': 'polite' });
    zoomOut.addEventListener('click', () => this.stepZoom(-1));
    zoomIn.addEventListener('click', () => this.stepZoom(1));
    zoomFit.addEventListener('click', () => this.setZoom(undefined));

    const cmap = h('select', { 'aria-label': 'Colour map', class: 'cmap' },
      h('option', { value: 'viridis' }, 'Sequential'),
      h('option', { value: 'diverging' }, 'Diverging'));
    cmap.value = ui.colormap;
    cmap.addEventListener('change', () => {
      ui.colormap = cmap.value === 'diverging' ? 'diverging' : 'viridis';
      this.render();
      this.onUiChange();
    });
    const mode = h('select', { 'aria-label': 'Block reduction', class: 'mode', title: 'How blocks are reduced when the matrix is larger than the canvas' },
      h('option', { value: 'mean' }, 'Block mean'),
      h('option', { value: 'max' }, 'Block max'));
    mode.value = ui.mode;
    mode.addEventListener('change', () => {
      ui.mode = mode.value === 'max' ? 'max' : 'mean';
      this.render();
      this.onUiChange();
    });

    this.canvas = h('canvas', {
      class: 'heatmap',
      tabindex: 0,
      role: 'img',
      'aria-describedby': `${id}-help`,
    });
    this.tooltip = h('div', { class: 'tooltip', role: 'status', hidden: true });
    this.scroller = h('div', { class: 'heatmap-scroll' }, this.canvas);
    this.legendBar = h('canvas', { class: 'legend-bar', width: 256, height: 1, 'aria-hidden': 'true' });
    this.legendMin = h('span', { class: 'legend-min' });
    this.legendMax = h('span', { class: 'legend-max' });
    const n = data.originalSize ?? data.size;
    const help = h('p', { class: 'hint', id: `${id}-help` },
      `Rows: units of A; columns: units of B (after alignment: B reordered by the permutation). ${n} units` +
        (n > data.size ? `, sent as ${data.size}×${data.size}` : '') + '. Wheel or +/− to zoom; focus the map and use the arrow keys to read cells.');

    this.element = h('section', { class: 'heatmap-panel', 'aria-label': `Heatmap of group ${data.name}` },
      h('div', { class: 'toolbar' }, views, h('span', { class: 'spacer' }), cmap, mode, zoomOut, this.zoomLabel, zoomIn, zoomFit),
      h('div', { class: 'heatmap-stage' }, this.scroller, this.tooltip),
      h('div', { class: 'legend' }, this.legendMin, this.legendBar, this.legendMax),
      help);

    this.canvas.addEventListener('mousemove', (e) => this.onHover(e));
    this.canvas.addEventListener('mouseleave', () => (this.tooltip.hidden = true));
    this.canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.stepZoom(e.deltaY < 0 ? 1 : -1);
    }, { passive: false });
    this.canvas.addEventListener('keydown', (e) => {
      if (e.key === '+' || e.key === '=') this.stepZoom(1);
      else if (e.key === '-') this.stepZoom(-1);
      else if (e.key === '0') this.setZoom(undefined);
      else if (e.key.startsWith('Arrow')) this.moveCursor(e.key, e.shiftKey ? 10 : 1);
      else if (e.key === 'Escape') this.tooltip.hidden = true;
      else return;
      e.preventDefault();
    });
    this.canvas.addEventListener('blur', () => (this.tooltip.hidden = true));
    // "Fit" follows the panel's size: recomputed when the panel is laid out or resized.
    window.addEventListener('resize', this.onResize);
    if (typeof ResizeObserver !== 'undefined') {
      this.resizeObserver = new ResizeObserver(this.onResize);
      this.resizeObserver.observe(this.element);
    }
    this.render();
  }

  private readonly onResize = (): void => {
    if (this.ui.zoom === undefined) this.applyZoom();
  };
  private resizeObserver: ResizeObserver | undefined;

  /** Stops following the panel's size (call when the view is replaced). */
  dispose(): void {
    window.removeEventListener('resize', this.onResize);
    this.resizeObserver?.disconnect();
  }

  /** The square, in CSS pixels, that "Fit" fills: the panel's width and 70% of its height, minus the border. */
  private fitPixels(): number {
    const width = this.element.isConnected ? this.element.clientWidth - 2 : 0;
    const height = Math.floor(window.innerHeight * FIT_HEIGHT_SHARE) - 2;
    return Math.max(32, Math.min(width > 0 ? width : FIT_PX, height > 0 ? height : FIT_PX));
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    this.render();
  }

  get view(): HeatmapKind {
    return this.ui.view;
  }

  setView(kind: HeatmapKind): void {
    this.ui.view = kind;
    this.render();
    this.onUiChange();
  }

  private onRadioKey(e: KeyboardEvent, kind: HeatmapKind): void {
    const order: HeatmapKind[] = ['perm', 'before', 'after'];
    const i = order.indexOf(kind);
    let next: number;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') next = (i + 1) % 3;
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') next = (i + 2) % 3;
    else return;
    e.preventDefault();
    this.setView(order[next]);
    this.viewButtons.get(order[next])?.focus();
  }

  /** Zoom in CSS pixels per canvas cell; undefined = fit. */
  private currentZoom(): number {
    const side = this.rendered?.side ?? this.data.size;
    if (this.ui.zoom !== undefined) return this.ui.zoom;
    // Fit with whole pixels per cell (or whole cells per pixel) so pixelated cells stay even.
    const fit = this.fitPixels() / side;
    return fit >= 1 ? Math.min(16, Math.floor(fit)) : Math.max(0.125, 1 / Math.ceil(1 / fit));
  }

  private stepZoom(dir: 1 | -1): void {
    const z = this.currentZoom();
    const next = dir > 0 ? ZOOM_STEPS.find((s) => s > z + 1e-9) : [...ZOOM_STEPS].reverse().find((s) => s < z - 1e-9);
    if (next !== undefined) this.setZoom(next);
  }

  private setZoom(z: number | undefined): void {
    this.ui.zoom = z;
    this.applyZoom();
    this.onUiChange();
  }

  private applyZoom(): void {
    const side = this.rendered?.side ?? this.data.size;
    const z = this.currentZoom();
    // CSSOM writes are allowed under the panel's CSP (no 'unsafe-inline' needed).
    this.canvas.style.width = `${Math.round(side * z)}px`;
    this.canvas.style.height = `${Math.round(side * z)}px`;
    this.canvas.dataset.zoom = String(z);
    this.zoomLabel.textContent = `${Math.round(z * 100)}%`;
  }

  /** Redraws the current view into the canvas. */
  render(): void {
    const t0 = performance.now();
    const kind = this.ui.view;
    for (const [k, b] of this.viewButtons) {
      b.setAttribute('aria-checked', String(k === kind));
      b.tabIndex = k === kind ? 0 : -1;
    }
    const nan = this.theme.dark ? ([90, 90, 90] as const) : ([200, 200, 200] as const);
    let r: RenderedHeatmap;
    let lut;
    if (kind === 'perm') {
      lut = binary(this.theme.backgroundRgb, this.theme.accentRgb);
      r = renderPermutation(this.data.perm, lut);
    } else {
      lut = colormap(this.ui.colormap, this.theme.dark);
      const m = kind === 'before' ? this.data.before : this.data.after;
      r = renderMatrix(m, this.data.size, lut, { mode: this.ui.mode, symmetric: this.ui.colormap === 'diverging', nanColor: nan });
    }
    this.rendered = r;
    if (this.canvas.width !== r.side) this.canvas.width = r.side;
    if (this.canvas.height !== r.side) this.canvas.height = r.side;
    const ctx = this.canvas.getContext('2d');
    if (ctx) ctx.putImageData(new ImageData(r.rgba as Uint8ClampedArray<ArrayBuffer>, r.side, r.side), 0, 0);
    this.canvas.setAttribute('aria-label', `${VIEW_LABELS[kind]} of group ${this.data.name}, ${r.side}×${r.side} cells, values ${fmt(r.min)} to ${fmt(r.max)}`);
    this.canvas.dataset.view = kind;
    this.drawLegend(lut, r);
    this.applyZoom();
    this.lastRenderMs = performance.now() - t0;
    this.canvas.dataset.renderMs = this.lastRenderMs.toFixed(1);
  }

  private drawLegend(lut: Uint8ClampedArray, r: RenderedHeatmap): void {
    const ctx = this.legendBar.getContext('2d');
    if (ctx) ctx.putImageData(new ImageData(new Uint8ClampedArray(lut), 256, 1), 0, 0);
    this.legendMin.textContent = this.ui.view === 'perm' ? '0' : fmt(r.min, 3);
    this.legendMax.textContent = this.ui.view === 'perm' ? '1' : fmt(r.max, 3);
  }

  /** Text for the cell under canvas cell (row, col) of the current view. */
  describeCell(row: number, col: number): string {
    const r = this.rendered;
    if (!r) return '';
    const n = this.data.originalSize ?? this.data.size;
    // Original units per drawn cell: the permutation view is drawn from the full-size perm;
    // the similarity views from the sent matrix (sender's reduction n/size) reduced by r.block.
    const unitsPerCell = this.ui.view === 'perm' ? r.block : (n / this.data.size) * r.block;
    const span = (k: number): [number, number] => [Math.floor(k * unitsPerCell), Math.min(n, Math.floor((k + 1) * unitsPerCell)) - 1];
    const [i0, i1] = span(row);
    const [j0, j1] = span(col);
    const single = i0 === i1 && j0 === j1;
    const value = r.values[row * r.side + col];
    const unitA = i0 === i1 ? `A unit ${i0}` : `A units ${i0}–${i1}`;
    let unitB: string;
    if (this.ui.view === 'before') unitB = j0 === j1 ? `B unit ${j0}` : `B units ${j0}–${j1}`;
    else if (this.ui.view === 'after') unitB = j0 === j1 ? `B unit ${this.data.perm[j0]} (moved to ${j0})` : `B positions ${j0}–${j1} after alignment`;
    else unitB = j0 === j1 ? `B unit ${j0}` : `B units ${j0}–${j1}`;
    let valueText: string;
    if (this.ui.view === 'perm') {
      valueText = single ? (this.data.perm[i0] === j0 ? 'matched (1)' : '0') : value > 0 ? 'contains a match' : 'no match';
    } else {
      // Multi-unit cells: our block reduction, or (r.block = 1) the sender's reduced cell.
      const label = single ? 'similarity' : r.block > 1 ? `block ${this.ui.mode}` : 'reduced cell';
      valueText = `${label} ${fmt(value)}`;
    }
    return `${unitA} · ${unitB} · ${valueText}`;
  }

  /** Keyboard reading of the matrix: arrow keys move a cell cursor whose text the tooltip shows. */
  private moveCursor(key: string, step: number): void {
    const r = this.rendered;
    if (!r) return;
    const clamp = (v: number) => Math.max(0, Math.min(r.side - 1, v));
    const [row, col] = this.cursor ?? [0, 0];
    if (this.cursor) {
      if (key === 'ArrowUp') this.cursor = [clamp(row - step), col];
      else if (key === 'ArrowDown') this.cursor = [clamp(row + step), col];
      else if (key === 'ArrowLeft') this.cursor = [row, clamp(col - step)];
      else if (key === 'ArrowRight') this.cursor = [row, clamp(col + step)];
    } else {
      this.cursor = [0, 0];
    }
    const [i, j] = this.cursor;
    const rect = this.canvas.getBoundingClientRect();
    const cell = rect.width / r.side;
    this.showTooltip(i, j, rect.left + (j + 1) * cell, rect.top + (i + 1) * cell);
  }

  private showTooltip(row: number, col: number, clientX: number, clientY: number): void {
    this.tooltip.textContent = this.describeCell(row, col);
    this.tooltip.hidden = false;
    const stage = this.tooltip.parentElement?.getBoundingClientRect();
    if (stage) {
      this.tooltip.style.left = `${clientX - stage.left + 14}px`;
      this.tooltip.style.top = `${clientY - stage.top + 14}px`;
    }
  }

  private onHover(e: MouseEvent): void {
    const r = this.rendered;
    if (!r) return;
    const rect = this.canvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * r.side);
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * r.side);
    if (row < 0 || col < 0 || row >= r.side || col >= r.side) {
      this.tooltip.hidden = true;
      return;
    }
    this.cursor = [row, col];
    this.showTooltip(row, col, e.clientX, e.clientY);
  }

  /** CSV of the current view's drawn cells (rows = A, columns = B as shown). */
  toCsv(): string {
    const r = this.rendered;
    if (!r) return '';
    const lines: string[] = [];
    for (let i = 0; i < r.side; i++) {
      const row: string[] = [];
      for (let j = 0; j < r.side; j++) row.push(String(r.values[i * r.side + j]));
      lines.push(row.join(','));
    }
    return lines.join('\n') + '\n';
  }
}
