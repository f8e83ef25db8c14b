/**
 * The alignment panel's section for an orthogonal alignment (`--symmetry orthogonal`): per map
 * how far it is from a permutation (mean row maximum of |R|: 1 for a permutation, about
 * √(2 / (π d)) for a random rotation of side d), with the objective before and after, the
 * picture of |R| of the map picked (mapPictureView.ts; a map's name in the table picks it too),
 * and A' (A with folded norms), written beside the output, which the aligned path starts from.
 */
import { csv, fmt, h, slug } from './dom';
import type { MapPictureView } from './mapPictureView';
import type { OrthogonalState } from './protocol';

export const ORTHOGONAL_DEFINITION =
  'Row max (mean): the mean over the rows of a map R of its largest |R_ij|. 1: R is a permutation (each unit goes to one unit); about √(2 / (π·size)) for a random rotation. Lower: B\'s features were mixed, not only reordered.';

/** What the section asks of its host: open A', export the table. */
export interface OrthogonalHost {
  readonly openFolded?: () => void;
  readonly exportCsv: (csv: string, suggestedName: string) => void;
}

/** `picture`: the view of the maps' pictures (absent or empty: an older run, which kept none). */
export function orthogonalSection(o: OrthogonalState, title: string, host: OrthogonalHost, picture?: MapPictureView): HTMLElement {
  const heads = o.maps.filter((m) => m.name !== 'residual stream');
  const residual = o.maps.find((m) => m.name === 'residual stream');
  const summary = h('p', { class: 'orthogonal-summary' },
    residual ? `Residual stream (${fmt(residual.size)} dims): row max ${fmt(residual.rowMaxMean, 3)}` : '',
    heads.length > 0 ? `; ${heads.length} per-head maps: row max ${fmt(Math.min(...heads.map((m) => m.rowMaxMean)), 3)} to ${fmt(Math.max(...heads.map((m) => m.rowMaxMean)), 3)}` : '',
    '. MLP units are permuted, as with permutations.');
  const folded = o.referenceFolded
    ? h('p', { class: 'folded' }, "A' (A with its norms folded, the reference B' is aligned to and the aligned path starts from) was written: ",
      host.openFolded ? openButton(o.referenceFolded.name, o.referenceFolded.path, host.openFolded) : h('span', { class: 'file', title: o.referenceFolded.path }, o.referenceFolded.name),
      o.untiedHead ? ". Both carry an untied lm_head (tie_word_embeddings: false)." : '.')
    : h('p', { class: 'hint' }, "Nothing was written: no A' either.");
  const head = h('tr', {}, ...['Map', 'Size', 'Row max (mean)', 'Objective before → after'].map((c, i) =>
    h('th', { scope: 'col', class: [i > 0 ? 'num' : '', i === 2 ? 'defined' : ''].filter(Boolean).join(' ') || undefined, title: i === 2 ? ORTHOGONAL_DEFINITION : undefined }, c)));
  const body = h('tbody', {});
  for (const m of o.maps) {
    body.append(h('tr', {}, h('th', { scope: 'row' }, picture && m.picture ? showButton(m.name, picture) : m.name), h('td', { class: 'num' }, fmt(m.size)),
      h('td', { class: 'num' }, rowMaxBar(m.rowMaxMean), fmt(m.rowMaxMean, 3)),
      h('td', { class: 'num' }, `${fmt(m.objectiveBefore)} → ${fmt(m.objectiveAfter)}`)));
  }
  const exportBtn = h('button', { type: 'button', class: 'secondary' }, 'Export CSV');
  exportBtn.addEventListener('click', () =>
    host.exportCsv(csv([['map', 'size', 'row_max_mean', 'objective_before', 'objective_after'], ...o.maps.map((m) => [m.name, m.size, m.rowMaxMean, m.objectiveBefore, m.objectiveAfter])]), `${slug(title)}-orthogonal-maps.csv`));
  // The row of the map shown is marked (aria-current), whichever way it was picked.
  picture?.onShow((name) => body.querySelectorAll('button.map-name').forEach((b) => b.setAttribute('aria-current', String(b.textContent === name))));
  const pictures = picture && picture.count > 0
    ? h('div', { class: 'orthogonal-picture' }, h('h3', {}, '|R| of one map'), picture.element)
    : h('p', { class: 'hint' }, 'This run kept no pictures of its maps (it was recorded before they were): align again to see them.');
  return h('section', { class: 'orthogonal', 'aria-labelledby': 'orthogonal-h' }, h('h2', { id: 'orthogonal-h' }, 'Orthogonal maps'),
    h('p', { class: 'hint' }, ORTHOGONAL_DEFINITION), summary, folded,
    h('div', { class: 'orthogonal-body' },
      h('div', { class: 'orthogonal-maps' },
        h('div', { class: 'orthogonal-scroll' }, h('table', { 'aria-label': 'Orthogonal maps: how far each is from a permutation' }, h('thead', {}, head), body)),
        h('div', { class: 'actions' }, exportBtn)),
      pictures));
}

/** The map's name in the table, as a button that shows its picture. */
function showButton(name: string, picture: MapPictureView): HTMLElement {
  const b = h('button', { type: 'button', class: 'link map-name', title: `Show |R| of ${name}` }, name);
  b.addEventListener('click', () => picture.show(name));
  return b;
}

function openButton(label: string, path: string, open: () => void): HTMLElement {
  const b = h('button', { type: 'button', class: 'link file', title: path, 'aria-label': `Open A': ${path}` }, label);
  b.addEventListener('click', open);
  return b;
}

/** A bar as long as the row max (1: full width), set through CSSOM: the webview's CSP forbids style attributes. */
function rowMaxBar(v: number): HTMLElement {
  const bar = h('span', { class: 'row-max-bar', 'aria-hidden': 'true' });
  bar.style.width = `${Math.round(60 * Math.max(0, Math.min(1, v)))}px`;
  return bar;
}
