/**
 * A diff's chosen tensor, drawn (the `diffTensor` picture): A's and B's (or π(B)'s) histograms
 * over one shared range, side by side, and |A−B| (|A−π(B)| when aligned) as a heatmap of block maxima (the engine reduced
 * it to at most 256 × 256 cells), coloured with the viridis map of shared/pixels.
 */
import { viridis } from '../shared/pixels/colormap';
import { finiteRange, toRgba } from '../shared/pixels/heatmap';
import { fmt, h } from './dom';
import { drawHistogram } from './histogram';
import type { TensorPicture } from './protocol';
import { readTheme } from './theme';

/** CSS pixels the heatmap's longer side is drawn at (the cells are scaled up or down to it). */
const HEATMAP_CSS_SIDE = 360;

function histogramBox(title: string, cls: string, counts: readonly number[], edges: readonly number[], color: string): HTMLElement {
  const canvas = h('canvas', { class: `histogram ${cls}`, width: 360, height: 110, role: 'img', 'aria-label': `${title}: ${counts.length} bins from ${fmt(edges[0])} to ${fmt(edges[edges.length - 1])}` });
  drawHistogram(canvas, counts, color);
  return h('figure', { class: 'hist' }, h('figcaption', {}, title), canvas,
    h('div', { class: 'axis' }, h('span', {}, fmt(edges[0])), h('span', {}, fmt(edges[edges.length - 1]))));
}

function heatmapBox(p: TensorPicture, aligned: boolean): HTMLElement {
  const m = p.heatmap;
  const what = aligned ? '|A−π(B)|' : '|A−B|';
  const values = Float32Array.from(m.values, (x) => (x === null ? NaN : x));
  const range = finiteRange(values);
  const canvas = h('canvas', { class: 'diff-heatmap', width: m.cols, height: m.rows, role: 'img',
    'aria-label': `${what} of ${p.tensor}: ${m.rows} × ${m.cols} cells, block max, from ${fmt(range.min)} to ${fmt(range.max)}` });
  const scale = HEATMAP_CSS_SIDE / Math.max(m.rows, m.cols);
  canvas.style.width = `${Math.round(m.cols * scale)}px`;
  canvas.style.height = `${Math.round(m.rows * scale)}px`;
  const ctx = canvas.getContext('2d');
  // Zero difference is the map's dark end; the range is the cells' own (0 … largest block max).
  if (ctx) ctx.putImageData(new ImageData(toRgba(values, viridis(), 0, range.max) as Uint8ClampedArray<ArrayBuffer>, m.cols, m.rows), 0, 0);
  const block = m.blockRows > 1 || m.blockCols > 1 ? `each cell the max over ${m.blockRows} × ${m.blockCols} elements` : 'one cell per element';
  return h('figure', { class: 'heatmap-box' }, h('figcaption', {}, `${what}: ${m.rows} × ${m.cols} cells, ${block}`), canvas,
    h('div', { class: 'axis' }, h('span', {}, '0'), h('span', { class: 'scale' }), h('span', {}, fmt(range.max))));
}

/** The picture's section: both histograms and the heatmap. `aligned`: B's histogram is π(B)'s. */
export function tensorPictureSection(p: TensorPicture, aligned: boolean): HTMLElement {
  const theme = readTheme();
  const shape = `[${p.shape.join(', ')}]`;
  return h('section', { class: 'tensor-picture', 'data-tensor': p.tensor, 'aria-label': `Tensor ${p.tensor}` },
    h('h2', {}, p.tensor, ' ', h('span', { class: 'shape' }, shape)),
    h('div', { class: 'pictures' },
      h('div', { class: 'hists' },
        histogramBox('A', 'hist-a', p.histogramA.counts, p.histogramA.edges, theme.red),
        histogramBox(aligned ? 'π(B)' : 'B', 'hist-b', p.histogramB.counts, p.histogramB.edges, theme.blue)),
      heatmapBox(p, aligned)));
}

/** What the section says while the engine draws, or why it could not. */
export function tensorPictureNote(tensor: string, text: string, error = false): HTMLElement {
  return h('section', { class: 'tensor-picture', 'data-tensor': tensor }, h('p', { class: error ? 'error' : 'loading', role: 'status' }, text));
}
