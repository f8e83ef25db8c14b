/**
 * The alignment panel's "Attention heads" tab: one attention layer at a time (layer selector),
 * with the heatmap of its head permutation (n_heads × n_heads, or KV groups × KV groups with
 * grouped-query attention, then the query heads inside each group) and its inner permutations
 * (q/k, v/o dimensions) as small multiples: one head_dim × head_dim picture per head, A's head g
 * beside the B head it was matched with. Inner permutations arrive as their diagonal blocks only
 * (shared/pixels/heatmapBlocks.ts), older runs as whole matrices.
 */
import { binary, colormap } from '../shared/pixels/colormap';
import { clear, fmt, h } from './dom';
import { robustRange, toRgba } from '../shared/pixels/heatmap';
import { diagonalBlock, expandBlocks, hasBlockSimilarities } from '../shared/pixels/heatmapBlocks';
import { HeatmapView, type HeatmapUiState } from './heatmapView';
import type { AttentionLayer, GroupSummary, HeatmapData, InnerPermutation } from './protocol';
import type { ThemeColors } from './theme';

export type InnerView = 'perm' | 'before' | 'after';

export interface HeadsUiState {
  layer: number;
  inner: InnerView;
}

const INNER_LABELS: Record<InnerView, string> = { perm: 'Permutation', before: 'Similarity before', after: 'Similarity after' };
/** CSS pixels of one small multiple (head_dim cells, pixelated). */
const CELL_PX = 112;
/** CSS pixels a head heatmap starts at (whole pixels per head, at most 32). */
const HEAD_MAP_PX = 160;

/** The head groups' names (outer, query heads per group, inner) of every layer. */
export function headGroupNames(layers: readonly AttentionLayer[]): Set<string> {
  const names = new Set<string>();
  for (const l of layers) {
    names.add(l.outer);
    if (l.groupHeads) names.add(l.groupHeads);
    for (const i of l.inner) names.add(i.perm);
  }
  return names;
}

export class HeadsView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private heatmaps: HeatmapView[] = [];
  private theme: ThemeColors;

  constructor(
    private readonly layers: readonly AttentionLayer[],
    private readonly data: readonly HeatmapData[],
    private readonly groups: readonly GroupSummary[],
    theme: ThemeColors,
    private readonly ui: HeadsUiState,
    private readonly views: Record<string, HeatmapUiState>,
    private readonly onUiChange: () => void,
  ) {
    this.theme = theme;
    if (ui.layer >= layers.length) ui.layer = 0;
    const select = h('select', { class: 'layer-select', 'aria-label': 'Attention layer' },
      ...layers.map((l, i) => h('option', { value: String(i) }, `${l.label} (${l.layer})`)));
    select.value = String(ui.layer);
    select.addEventListener('change', () => this.setLayer(Number(select.value)));
    const prev = h('button', { type: 'button', class: 'icon', 'aria-label': 'Previous layer', title: 'Previous layer' }, '‹');
    const next = h('button', { type: 'button', class: 'icon', 'aria-label': 'Next layer', title: 'Next layer' }, '›');
    const step = (d: number): void => {
      const i = Math.min(layers.length - 1, Math.max(0, this.ui.layer + d));
      select.value = String(i);
      this.setLayer(i);
    };
    prev.addEventListener('click', () => step(-1));
    next.addEventListener('click', () => step(1));
    this.body = h('div', { class: 'heads-body' });
    this.element = h('section', { class: 'heads-view', 'aria-label': 'Attention heads per layer' },
      h('div', { class: 'toolbar' }, h('label', {}, 'Layer ', select), prev, next, h('span', { class: 'hint' }, `${layers.length} attention layer${layers.length === 1 ? '' : 's'}`)),
      this.body);
    this.render();
  }

  private setLayer(i: number): void {
    this.ui.layer = i;
    this.render();
    this.onUiChange();
  }

  private find(name: string): HeatmapData | undefined {
    return this.data.find((d) => d.name === name);
  }

  private render(): void {
    this.disposeHeatmaps();
    clear(this.body);
    const l = this.layers[this.ui.layer];
    if (!l) return;
    this.body.append(h('p', { class: 'layer-summary' }, l.summary));
    const blockWord = l.kvGroups !== undefined ? 'KV groups' : 'Heads';
    this.body.append(this.groupHeatmap(l.outer, `${blockWord}: ${l.kvGroups ?? l.heads} × ${l.kvGroups ?? l.heads}`));
    if (l.groupHeads) this.body.append(this.groupHeatmap(l.groupHeads, `Query heads within each KV group: ${l.heads / (l.kvGroups ?? 1)} per group`));
    for (const inner of l.inner) this.body.append(this.smallMultiples(l, inner));
  }

  private stats(name: string): HTMLElement {
    const g = this.groups.find((x) => x.name === name);
    const dl = h('dl', { class: 'facts group-stats', 'aria-label': `Statistics of group ${name}` });
    if (!g) return dl;
    const fact = (k: string, v: string) => dl.append(h('div', {}, h('dt', {}, k), h('dd', {}, v)));
    fact('Units', fmt(g.size));
    fact('Moved', fmt(g.moved));
    fact('Objective', `${fmt(g.objectiveBefore)} → ${fmt(g.objectiveAfter)}`);
    return dl;
  }

  private groupHeatmap(name: string, title: string): HTMLElement {
    const data = this.find(name);
    const section = h('section', { class: 'head-group', 'data-group': name }, h('h3', {}, title, ' ', h('span', { class: 'hint mono' }, name)), this.stats(name));
    if (!data) {
      section.append(h('p', { class: 'empty' }, 'No similarity matrix was kept for this group.'));
      return section;
    }
    // A small matrix starts as the permutation, about HEAD_MAP_PX wide: n_heads × n_heads is readable at a glance.
    const zoom = Math.max(1, Math.min(32, Math.floor(HEAD_MAP_PX / data.size)));
    const ui = (this.views[name] ??= { view: 'perm', colormap: 'viridis', mode: 'mean', zoom });
    // Query heads within each KV group arrive as diagonal blocks: small (n_heads²) drawn whole.
    const view = new HeatmapView(expandBlocks(data), this.theme, ui, this.onUiChange);
    this.heatmaps.push(view);
    section.append(view.element);
    return section;
  }

  /** One head_dim × head_dim picture per block of an inner permutation. */
  private smallMultiples(l: AttentionLayer, inner: InnerPermutation): HTMLElement {
    const data = this.find(inner.perm);
    const blockWord = l.kvGroups !== undefined ? 'KV group' : 'head';
    const section = h('section', { class: 'head-group inner', 'data-group': inner.perm },
      h('h3', {}, `${inner.label} dims inside each ${blockWord}: ${l.headDim} × ${l.headDim}`, ' ', h('span', { class: 'hint mono' }, inner.perm)),
      this.stats(inner.perm));
    if (!data) {
      section.append(h('p', { class: 'empty' }, 'No similarity matrix was kept for this group.'));
      return section;
    }
    const m = l.headDim;
    const n = data.originalSize ?? data.size;
    const blocks = Math.floor(n / m);
    const outer = this.find(l.outer)?.perm;
    // Similarities exist per block when sent as blocks, or as a whole matrix not block-averaged.
    const views: InnerView[] = hasBlockSimilarities(data) ? ['perm', 'before', 'after'] : ['perm'];
    if (!views.includes(this.ui.inner)) this.ui.inner = 'perm';
    const seg = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': `${inner.label}: matrices shown` });
    for (const v of views) {
      const b = h('button', { type: 'button', class: 'seg', role: 'radio', 'aria-checked': String(v === this.ui.inner), 'data-view': v }, INNER_LABELS[v]);
      b.addEventListener('click', () => {
        this.ui.inner = v;
        this.render();
        this.onUiChange();
      });
      seg.append(b);
    }
    const localPerm = (g: number): Int32Array => Int32Array.from({ length: m }, (_, i) => data.perm[g * m + i] - g * m);
    const view = this.ui.inner;
    const values = Array.from({ length: blocks }, (_, g) => {
      if (view === 'perm') {
        const p = localPerm(g);
        const cells = new Float32Array(m * m);
        for (let i = 0; i < m; i++) cells[i * m + p[i]] = 1;
        return cells;
      }
      return diagonalBlock(data, view, g, m) ?? new Float32Array(m * m);
    });
    let lo = 0;
    let hi = 1;
    if (view !== 'perm') {
      const all = new Float32Array(blocks * m * m);
      values.forEach((v, g) => all.set(v, g * m * m));
      ({ min: lo, max: hi } = robustRange(all));
    }
    const lut = view === 'perm' ? binary(this.theme.backgroundRgb, this.theme.accentRgb) : colormap('viridis', this.theme.dark);
    const grid = h('div', { class: 'multiples', role: 'list' });
    values.forEach((v, g) => {
      const canvas = h('canvas', { class: 'multiple', width: m, height: m, role: 'img' });
      canvas.style.width = `${CELL_PX}px`;
      canvas.style.height = `${CELL_PX}px`;
      const ctx = canvas.getContext('2d');
      ctx?.putImageData(new ImageData(toRgba(v, lut, lo, hi) as Uint8ClampedArray<ArrayBuffer>, m, m), 0, 0);
      const moved = localPerm(g).reduce((a, x, i) => a + (x !== i ? 1 : 0), 0);
      // Blocks pair the same heads before and after; an older whole "before" matrix did not.
      const samePairs = data.blocks !== undefined || view !== 'before';
      const partner = outer && samePairs ? outer[g] : g;
      const caption = `A ${blockWord} ${g} ↔ B ${blockWord} ${partner}`;
      canvas.setAttribute('aria-label', `${inner.label} dims, ${caption}: ${INNER_LABELS[view].toLowerCase()}, ${moved} of ${m} dims moved`);
      grid.append(h('figure', { class: 'multiple-cell', role: 'listitem', 'data-block': String(g) }, canvas,
        h('figcaption', {}, caption, h('br', {}), h('span', { class: 'hint' }, `${moved} of ${m} moved`))));
    });
    section.append(h('div', { class: 'toolbar' }, seg), grid,
      h('p', { class: 'hint' }, `Rows: A's dims; columns: the matched B ${blockWord}'s dims${view === 'before' ? (data.blocks !== undefined ? ` (before: the same matched ${blockWord}s, dims unpermuted)` : ` (before: each ${blockWord} against the B ${blockWord} in the same position, unpermuted)`) : view === 'after' ? ' (after alignment)' : ''}.`));
    return section;
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    this.render();
  }

  private disposeHeatmaps(): void {
    for (const v of this.heatmaps) v.dispose();
    this.heatmaps = [];
  }

  dispose(): void {
    this.disposeHeatmaps();
    this.element.remove();
  }
}
