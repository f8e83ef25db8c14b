/**
 * The picture of one orthogonal map R of an orthogonal alignment (`--symmetry orthogonal`): |R|
 * as the engine sent it (block max, at most 256 cells per side), drawn on a fixed 0 … 1 scale
 * in the colours of the permutation pictures (page background → theme accent; shared/pixels),
 * so a permutation looks like one: one full-colour cell per row. A selector picks the map (the
 * residual stream first, then per layer the query/key and value/output maps of each head); the
 * arrow keys, or the pointer, read a cell out.
 */
import { binary } from '../shared/pixels/colormap';
import { toRgba } from '../shared/pixels/heatmap';
import { fmt, h } from './dom';
import type { OrthogonalState } from './protocol';
import type { ThemeColors } from './theme';

type MapRow = OrthogonalState['maps'][number];
type PicturedMap = MapRow & { readonly picture: NonNullable<MapRow['picture']> };

export const MAP_PICTURE_EXPLANATION = 'A permutation shows one full-colour cell per row; rows spread over many faint cells mix B\'s directions: a rotation.';

/** CSS pixels the picture's side is drawn at, at least (whole pixels per cell: a small map is scaled up). */
const PICTURE_CSS_SIDE = 320;

export interface MapPictureUiState {
  /** The map shown, by name. */
  map?: string;
}

/** What the rows and columns of a map are, in the user's words (the map's name says its kind: panelState.orthogonalState). */
export function axisWords(name: string): { rows: string; cols: string } {
  if (name.includes('· QK ·')) return { rows: "B's query/key dimension", cols: "A's query/key dimension" };
  if (name.includes('· VO ·')) return { rows: "B's value dimension", cols: "A's value dimension" };
  return { rows: "B's residual direction", cols: "A's residual direction" };
}

export class MapPictureView {
  readonly element: HTMLElement;
  private readonly maps: readonly PicturedMap[];
  private readonly select: HTMLSelectElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly legendBar: HTMLCanvasElement;
  private readonly caption: HTMLElement;
  private readonly rowsLabel: HTMLElement;
  private readonly colsLabel: HTMLElement;
  private readonly readout: HTMLElement;
  private cursor: [number, number] | undefined;
  private readonly listeners: ((name: string) => void)[] = [];

  constructor(
    maps: readonly MapRow[],
    private theme: ThemeColors,
    private readonly ui: MapPictureUiState,
    private readonly onUiChange: () => void,
  ) {
    this.maps = maps.filter((m): m is PicturedMap => m.picture !== undefined);
    if (!this.maps.some((m) => m.name === ui.map)) ui.map = this.maps[0]?.name;
    this.select = h('select', { class: 'map-select', 'aria-label': 'Map shown' }, ...this.maps.map((m) => h('option', { value: m.name }, m.name)));
    this.select.addEventListener('change', () => this.show(this.select.value));
    this.canvas = h('canvas', { class: 'heatmap map-picture', tabindex: 0, role: 'img' });
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
    this.canvas.addEventListener('mousemove', (e) => this.onHover(e));
    this.legendBar = h('canvas', { class: 'legend-bar', width: 256, height: 1, 'aria-hidden': 'true' });
    this.caption = h('p', { class: 'hint map-caption' });
    this.rowsLabel = h('span', { class: 'axis-label rows' });
    this.colsLabel = h('span', { class: 'axis-label cols' });
    this.readout = h('p', { class: 'map-readout', role: 'status', 'aria-live': 'polite' });
    this.element = h('div', { class: 'map-picture-view', role: 'group', 'aria-label': '|R| of one map' },
      h('div', { class: 'toolbar' }, h('label', {}, 'Map ', this.select)),
      h('p', { class: 'hint map-explanation' }, MAP_PICTURE_EXPLANATION),
      h('div', { class: 'map-figure' }, this.rowsLabel, h('div', { class: 'heatmap-scroll' }, this.canvas), h('span'), this.colsLabel),
      h('div', { class: 'legend' }, h('span', { class: 'legend-title' }, '|R_ij|'), h('span', { class: 'legend-min' }, '0'), this.legendBar, h('span', { class: 'legend-max' }, '1')),
      this.caption, this.readout);
    if (this.ui.map !== undefined) this.select.value = this.ui.map;
    this.render();
  }

  /** How many maps have a picture (0: an older run, nothing to draw). */
  get count(): number {
    return this.maps.length;
  }

  /** The map shown: its name now, and after each change. */
  onShow(listener: (name: string) => void): void {
    this.listeners.push(listener);
    if (this.ui.map !== undefined) listener(this.ui.map);
  }

  private get current(): PicturedMap | undefined {
    return this.maps.find((m) => m.name === this.ui.map);
  }

  /** Shows the map named `name` (the selector follows). */
  show(name: string): void {
    if (!this.maps.some((m) => m.name === name)) return;
    this.ui.map = name;
    this.select.value = name;
    this.cursor = undefined;
    this.readout.textContent = '';
    this.render();
    for (const l of this.listeners) l(name);
    this.onUiChange();
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    this.render();
  }

  private render(): void {
    const m = this.current;
    if (!m) return;
    const { side, block, values } = m.picture;
    // 0 … 1 whatever the map: |R_ij| ≤ 1 for an orthogonal R, and 1 is a permutation's cell.
    const lut = binary(this.theme.backgroundRgb, this.theme.accentRgb);
    this.canvas.width = side;
    this.canvas.height = side;
    this.canvas.getContext('2d')?.putImageData(new ImageData(toRgba(values, lut, 0, 1, this.theme.dark ? [90, 90, 90] : [200, 200, 200]) as Uint8ClampedArray<ArrayBuffer>, side, side), 0, 0);
    const css = side * Math.max(1, Math.floor(PICTURE_CSS_SIDE / side));
    this.canvas.style.width = `${css}px`;
    this.canvas.style.height = `${css}px`;
    this.legendBar.getContext('2d')?.putImageData(new ImageData(new Uint8ClampedArray(lut), 256, 1), 0, 0);
    const words = axisWords(m.name);
    this.rowsLabel.textContent = `Rows: ${words.rows} (0–${m.size - 1})`;
    this.colsLabel.textContent = `Columns: ${words.cols} (0–${m.size - 1})`;
    const reduced = block > 1 ? `${side} × ${side} cells, each the largest |R_ij| of ${block} × ${block} (block max)` : 'one cell per entry';
    this.caption.textContent = `${m.name}: ${m.size} × ${m.size}, ${reduced}; row max (mean) ${fmt(m.rowMaxMean, 3)}.`;
    this.canvas.dataset.map = m.name;
    this.canvas.setAttribute('aria-label', `|R| of ${m.name}: ${side} × ${side} cells, rows ${words.rows}, columns ${words.cols}, row max (mean) ${fmt(m.rowMaxMean, 3)}. Arrow keys read the cells.`);
  }

  /** "B's residual direction 3 · A's residual direction 7 · |R_ij| 0.91" (ranges when a cell is a block). */
  describeCell(row: number, col: number): string {
    const m = this.current;
    if (!m) return '';
    const { side, block, values } = m.picture;
    const span = (k: number): string => {
      const [a, b] = [k * block, Math.min(m.size, (k + 1) * block) - 1];
      return a === b ? `${a}` : `${a}–${b}`;
    };
    const words = axisWords(m.name);
    const label = block > 1 ? 'block max |R_ij|' : '|R_ij|';
    return `${words.rows} ${span(row)} · ${words.cols} ${span(col)} · ${label} ${fmt(values[row * side + col], 3)}`;
  }

  private read(row: number, col: number): void {
    this.cursor = [row, col];
    this.readout.textContent = this.describeCell(row, col);
  }

  private onKey(e: KeyboardEvent): void {
    const m = this.current;
    if (!m) return;
    const step = e.shiftKey ? 10 : 1;
    const clamp = (v: number) => Math.max(0, Math.min(m.picture.side - 1, v));
    const [r, c] = this.cursor ?? [0, 0];
    if (!this.cursor && e.key.startsWith('Arrow')) this.read(0, 0);
    else if (e.key === 'ArrowUp') this.read(clamp(r - step), c);
    else if (e.key === 'ArrowDown') this.read(clamp(r + step), c);
    else if (e.key === 'ArrowLeft') this.read(r, clamp(c - step));
    else if (e.key === 'ArrowRight') this.read(r, clamp(c + step));
    else return;
    e.preventDefault();
  }

  private onHover(e: MouseEvent): void {
    const m = this.current;
    if (!m) return;
    const rect = this.canvas.getBoundingClientRect();
    const side = m.picture.side;
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * side);
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * side);
    if (row >= 0 && col >= 0 && row < side && col < side) this.read(row, col);
  }
}
