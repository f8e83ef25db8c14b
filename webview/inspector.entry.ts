/**
 * Checkpoint inspector webview: tensors grouped by module prefix (collapsible, subtotals; rows are
 * built only when a group is opened, at most ROW_PAGE at a time, so thousands of tensors stay
 * fast), `__metadata__`, the detected architecture's permutation groups, and per-tensor stats with
 * a histogram fetched on demand (`requestStats` → `stats` | `statsError`).
 */
import { formatBytes } from '../shared/bytes';
import { clear, fmt, h, vscodeApi } from './dom';
import { drawHistogram } from './histogram';
import type { AttentionLayer, ExpertLayer, FromInspector, InspectorState, InspectorTensor, ScanResult, TensorStatsResult } from './protocol';
import { readTheme, watchTheme } from './theme';
import { inspectorState, toInspector } from './validate';
import { onMessages } from './onMessages';

const ROW_PAGE = 500;
/** Groups start open when the checkpoint has at most this many tensors. */
const OPEN_ALL_BELOW = 200;

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

type StatsEntry =
  | { status: 'loading'; fraction?: number; message?: string; timeLeft?: string; cancelling?: boolean }
  | { status: 'done'; stats: TensorStatsResult }
  | { status: 'cancelled' }
  | { status: 'error'; message: string };

interface Group {
  prefix: string;
  tensors: InspectorTensor[];
  params: number;
  bytes: number;
  open: boolean;
  header: HTMLTableSectionElement;
  rows: HTMLTableSectionElement;
  toggle: HTMLButtonElement;
}

const api = vscodeApi<FromInspector, InspectorState>();
const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
const stats = new Map<string, StatsEntry>();
let groups: Group[] = [];
let filterText = '';
let current: InspectorState | undefined;
/** "Scan for problems": flags per tensor name once the scan has run; `onlyFlagged` narrows the table to them. */
let scanFlags: Map<string, readonly string[]> | undefined;
let onlyFlagged = false;
let scanStatus = '';

function params(t: InspectorTensor): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

function bytes(t: InspectorTensor): number {
  return t.offsets ? t.offsets[1] - t.offsets[0] : params(t) * (DTYPE_BYTES[t.dtype.toUpperCase()] ?? 0);
}

function prefixOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? '(top level)' : name.slice(0, i);
}

/** log10(n!) by summing logs (n up to a few hundred thousand is instant). */
function log10Factorial(n: number): number {
  let s = 0;
  for (let k = 2; k <= n; k++) s += Math.log10(k);
  return s;
}

function section(title: string, id: string, ...content: (Node | string)[]): HTMLElement {
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

function architectureSection(s: InspectorState): HTMLElement | string {
  const a = s.architecture;
  if (!a) return section('Architecture', 'arch-h', h('p', { class: 'hint' }, 'No known architecture detected; alignment needs a permutation spec (--spec).'));
  // A per-block permutation (inside heads) is one permutation of n / blocks units per block.
  const rows = Object.entries(a.perms).map(([name, n]) => {
    const blocks = a.blocks?.[name];
    const units = blocks ? `${fmt(blocks)} × ${fmt(n / blocks)}` : fmt(n);
    const log = blocks ? blocks * log10Factorial(n / blocks) : log10Factorial(n);
    return h('tr', {}, h('th', { scope: 'row' }, name), h('td', { class: 'num' }, units), h('td', { class: 'num' }, fmt(log, 5)));
  });
  if (Object.keys(a.perms).length === 0) {
    return section('Architecture', 'arch-h', h('p', { class: 'hint' }, a.family), ...(a.notes ?? []).map((n) => h('p', { class: 'hint' }, n)));
  }
  return section('Architecture', 'arch-h',
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Family'), h('dd', {}, a.family)),
      h('div', {}, h('dt', {}, 'Permutation groups'), h('dd', {}, fmt(Object.keys(a.perms).length))),
      h('div', {}, h('dt', {}, 'log₁₀ |symmetry group|'), h('dd', {}, fmt(a.symmetryLog10, 6)))),
    h('table', { class: 'perm-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Group'), h('th', { scope: 'col', class: 'num' }, 'Units'), h('th', { scope: 'col', class: 'num' }, 'log₁₀ n!'))),
      h('tbody', {}, ...rows)),
    attentionTable(a.attention ?? []),
    expertTable(a.experts ?? []),
    ...(a.notes ?? []).map((n) => h('p', { class: 'hint' }, n)));
}

/** Per layer: heads × head_dim (KV groups with GQA) and which dimensions permute inside a head. */
function attentionTable(layers: readonly AttentionLayer[]): HTMLElement | string {
  if (layers.length === 0) return '';
  const rows = layers.map((l) => h('tr', { 'data-layer': l.layer, title: l.summary },
    h('th', { scope: 'row' }, l.label),
    h('td', {}, l.shape),
    h('td', {}, l.details.join('; ') || 'no dimensions permute inside a head'),
    h('td', { class: 'mono' }, [l.outer, l.groupHeads, ...l.inner.map((i) => i.perm)].filter((x): x is string => !!x).join(', '))));
  return h('div', { class: 'attention' },
    h('h3', { id: 'heads-h' }, 'Attention heads'),
    h('table', { class: 'perm-table heads-table', 'aria-labelledby': 'heads-h' },
      h('thead', {}, h('tr', {}, ...['Layer', 'Heads', 'Inside each head', 'Groups'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows)));
}

/** Per layer of a mixture of experts: experts × units, the router's top-k, the permutations that move them. */
function expertTable(layers: readonly ExpertLayer[]): HTMLElement | string {
  if (layers.length === 0) return '';
  const rows = layers.map((l) => h('tr', { 'data-layer': l.layer, title: l.summary },
    h('th', { scope: 'row' }, l.label),
    h('td', {}, `${fmt(l.experts)} experts × ${fmt(l.unitsPerExpert)} units`),
    h('td', { class: 'num' }, l.topK !== undefined ? fmt(l.topK) : '—'),
    h('td', {}, 'experts permute as units, the units inside each expert'),
    h('td', { class: 'mono' }, `${l.outer}, ${l.units}`)));
  return h('div', { class: 'experts' },
    h('h3', { id: 'experts-h' }, 'Experts'),
    h('table', { class: 'perm-table experts-table', 'aria-labelledby': 'experts-h' },
      h('thead', {}, h('tr', {}, ...['Layer', 'Experts', 'Router top-k', 'What permutes', 'Groups'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows)));
}

function metadataSection(s: InspectorState): HTMLElement {
  const entries = Object.entries(s.metadata);
  if (entries.length === 0) return section('__metadata__', 'meta-h', h('p', { class: 'hint' }, 'No metadata.'));
  return section('__metadata__', 'meta-h', h('table', { class: 'meta-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'))),
    h('tbody', {}, ...entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'mono' }, v))))));
}

/** The running computation: what it is doing, how far (a bar once the engine reports), and Cancel. */
function progressBox(name: string, e: Extract<StatsEntry, { status: 'loading' }>): HTMLElement {
  const cancel = h('button', { type: 'button', class: 'secondary small stats-cancel', 'aria-label': `Cancel statistics of ${name}` }, e.cancelling ? 'Cancelling…' : 'Cancel');
  cancel.disabled = e.cancelling === true;
  cancel.addEventListener('click', () => {
    const cur = stats.get(name);
    if (cur?.status !== 'loading') return;
    cur.cancelling = true;
    cancel.textContent = 'Cancelling…';
    cancel.disabled = true;
    api.postMessage({ type: 'cancelStats', tensor: name });
  });
  const bar = h('progress', { class: 'stats-bar', max: 1, 'aria-label': `Statistics of ${name}: progress` });
  if (e.fraction !== undefined) bar.value = e.fraction;
  else bar.removeAttribute('value');
  const text = h('span', { class: 'stats-message' }, progressText(name, e));
  return h('div', { class: 'stats-progress', role: 'status' }, text, bar, cancel);
}

/** "Statistics (pass 1 of 2): 1.2 GB of 4 GB read (30%, about 40 s left)". */
function progressText(name: string, e: Extract<StatsEntry, { status: 'loading' }>): string {
  const tail = [e.fraction !== undefined ? `${Math.floor(e.fraction * 100)}%` : '', e.timeLeft ?? ''].filter(Boolean).join(', ');
  return `${e.message ?? `Computing statistics of ${name}…`}${tail ? ` (${tail})` : ''}`;
}

/** Updates a shown progress box in place (keeps the Cancel button under the pointer). */
function updateProgress(name: string): boolean {
  const e = stats.get(name);
  if (e?.status !== 'loading') return false;
  let updated = false;
  for (const r of root.querySelectorAll<HTMLTableRowElement>('tr.stats-row')) {
    if (r.dataset.statsFor !== name) continue;
    const bar = r.querySelector<HTMLProgressElement>('progress.stats-bar');
    const text = r.querySelector<HTMLElement>('.stats-message');
    if (!bar || !text) continue;
    if (e.fraction !== undefined) bar.value = e.fraction;
    text.textContent = progressText(name, e);
    updated = true;
  }
  return updated;
}

function statsCell(name: string): HTMLElement {
  const e = stats.get(name);
  if (!e) return h('div', {});
  if (e.status === 'loading') return progressBox(name, e);
  if (e.status === 'cancelled') return h('p', { class: 'hint', role: 'status' }, `Statistics of ${name} cancelled.`);
  if (e.status === 'error') return h('p', { class: 'error', role: 'alert' }, e.message);
  const s = e.stats;
  const dl = h('dl', { class: 'facts stats' });
  const fact = (k: string, v: string) => dl.append(h('div', {}, h('dt', {}, k), h('dd', {}, v)));
  fact('count', fmt(s.count));
  fact('min', fmt(s.min));
  fact('max', fmt(s.max));
  fact('mean', fmt(s.mean));
  fact('std', fmt(s.std));
  fact('NaN', fmt(s.nanCount));
  fact('Inf', fmt(s.infCount));
  const canvas = h('canvas', { class: 'histogram', width: 360, height: 90, role: 'img', 'aria-label': `Histogram of ${name}, ${s.histogram.counts.length} bins from ${fmt(s.min)} to ${fmt(s.max)}` });
  drawHistogram(canvas, s.histogram.counts);
  const edges = s.histogram.edges;
  const axis = h('div', { class: 'hist-axis' }, h('span', {}, fmt(edges[0])), h('span', {}, fmt(edges[edges.length - 1])));
  return h('div', { class: 'stats-box' }, dl, h('div', { class: 'hist' }, canvas, axis));
}

function tensorRows(t: InspectorTensor): HTMLTableRowElement[] {
  const btn = h('button', { type: 'button', class: 'secondary small stats-button', 'aria-label': `Statistics of ${t.name}`, 'data-stats-button': t.name }, 'Stats');
  btn.disabled = stats.get(t.name)?.status === 'loading';
  btn.addEventListener('click', () => {
    // One computation per tensor: a second click while it runs does nothing.
    if (stats.get(t.name)?.status === 'loading') return;
    stats.set(t.name, { status: 'loading' });
    refreshStats(t.name);
    api.postMessage({ type: 'requestStats', tensor: t.name });
  });
  const flags = scanFlags?.get(t.name) ?? [];
  const row = h('tr', { class: flags.length ? 'tensor flagged' : 'tensor', 'data-tensor': t.name, 'data-flags': flags.length ? flags.join(' ') : undefined },
    h('th', { scope: 'row', class: 'mono name', title: t.name }, t.name.slice(prefixOf(t.name).length + (t.name.includes('.') ? 1 : 0)) || t.name,
      ...flags.map((f) => h('span', { class: 'flag', title: FLAG_WORDS[f] ?? f }, f))),
    h('td', { class: 'mono' }, t.dtype),
    h('td', { class: 'mono' }, `[${t.shape.join(', ')}]`),
    h('td', { class: 'num' }, fmt(params(t))),
    h('td', { class: 'num' }, formatBytes(bytes(t))),
    h('td', {}, btn));
  const statsRow = h('tr', { class: 'stats-row', 'data-stats-for': t.name, hidden: !stats.has(t.name) }, h('td', { colspan: 6 }, statsCell(t.name)));
  return [row, statsRow];
}

function refreshStats(name: string): void {
  const loading = stats.get(name)?.status === 'loading';
  for (const b of root.querySelectorAll<HTMLButtonElement>('button.stats-button')) {
    if (b.dataset.statsButton === name) b.disabled = loading;
  }
  for (const r of root.querySelectorAll<HTMLTableRowElement>('tr.stats-row')) {
    if (r.dataset.statsFor !== name) continue;
    r.hidden = false;
    const td = r.firstElementChild;
    if (td) {
      clear(td);
      td.append(statsCell(name));
    }
  }
}

function visibleTensors(g: Group): InspectorTensor[] {
  const flagged = onlyFlagged && scanFlags ? g.tensors.filter((t) => (scanFlags?.get(t.name)?.length ?? 0) > 0) : g.tensors;
  if (!filterText) return flagged;
  const f = filterText.toLowerCase();
  return flagged.filter((t) => t.name.toLowerCase().includes(f));
}

const FLAG_WORDS: Readonly<Record<string, string>> = {
  nan: 'some values are NaN',
  inf: 'some values are ±Inf',
  'all-zero': 'every value is 0',
  constant: 'every value is the same',
  extreme: 'max |x| above 10⁴, or a std over 100 × the file\'s median std',
};

/** The scan's summary and the "only flagged" switch, under the toolbar. */
function scanBar(): HTMLElement {
  const bar = h('div', { class: 'scan-bar', role: 'status' }, scanStatus);
  if (scanFlags) {
    const only = h('input', { type: 'checkbox', class: 'only-flagged', checked: onlyFlagged });
    only.addEventListener('change', () => {
      onlyFlagged = only.checked;
      applyFilter();
    });
    bar.append(' ', h('label', {}, only, ' Only flagged tensors'));
  }
  return bar;
}

function showScan(scan: ScanResult): void {
  scanFlags = new Map(scan.tensors.filter((t) => t.flags.length).map((t) => [t.name, t.flags]));
  const counts = new Map<string, number>();
  for (const flags of scanFlags.values()) for (const f of flags) counts.set(f, (counts.get(f) ?? 0) + 1);
  scanStatus = scan.flagged === 0
    ? `Scan: no problems found in ${fmt(scan.tensors.length)} tensors.`
    : `Scan: ${fmt(scan.flagged)} of ${fmt(scan.tensors.length)} tensors flagged (${[...counts].map(([f, n]) => `${f}: ${n}`).join(', ')}).`;
  onlyFlagged = scan.flagged > 0;
}

function renderRows(g: Group, limit = ROW_PAGE): void {
  clear(g.rows);
  const list = visibleTensors(g);
  for (const t of list.slice(0, limit)) g.rows.append(...tensorRows(t));
  if (list.length > limit) {
    const more = h('button', { type: 'button', class: 'link' }, `Show ${Math.min(ROW_PAGE, list.length - limit)} more of ${list.length - limit}`);
    more.addEventListener('click', () => renderRows(g, limit + ROW_PAGE));
    g.rows.append(h('tr', {}, h('td', { colspan: 6 }, more)));
  }
}

/** Shows or hides a group's rows; rows exist in the DOM only while shown. */
function showRows(g: Group, show: boolean): void {
  g.toggle.setAttribute('aria-expanded', String(show));
  g.rows.hidden = !show;
  if (show) renderRows(g);
  else clear(g.rows);
}

/** User's open/closed choice (kept while a filter temporarily opens matching groups). */
function setOpen(g: Group, open: boolean): void {
  g.open = open;
  if (!g.header.hidden) showRows(g, open);
}

function applyFilter(): void {
  for (const g of groups) {
    const n = visibleTensors(g).length;
    g.header.hidden = n === 0;
    showRows(g, n > 0 && (filterText || onlyFlagged ? true : g.open));
  }
}

function tensorSection(s: InspectorState): HTMLElement {
  const byPrefix = new Map<string, InspectorTensor[]>();
  for (const t of s.tensors) {
    const p = prefixOf(t.name);
    const list = byPrefix.get(p) ?? [];
    list.push(t);
    byPrefix.set(p, list);
  }
  const table = h('table', { class: 'tensors', 'aria-label': 'Tensors grouped by module' },
    h('thead', {}, h('tr', {}, ...['Name', 'dtype', 'Shape', 'Params', 'Bytes', ''].map((c, i) => h('th', { scope: 'col', class: i === 3 || i === 4 ? 'num' : undefined }, c)))));
  const openAll = s.tensors.length <= OPEN_ALL_BELOW;
  groups = [...byPrefix.entries()].map(([prefix, tensors]) => {
    const toggle = h('button', { type: 'button', class: 'group-toggle', 'aria-expanded': 'false', 'data-prefix': prefix }, prefix);
    const p = tensors.reduce((a, t) => a + params(t), 0);
    const b = tensors.reduce((a, t) => a + bytes(t), 0);
    const header = h('tbody', { class: 'group' }, h('tr', { class: 'group-row' },
      h('th', { scope: 'rowgroup', colspan: 3 }, toggle, h('span', { class: 'count' }, ` ${tensors.length} tensor${tensors.length === 1 ? '' : 's'}`)),
      h('td', { class: 'num' }, fmt(p)), h('td', { class: 'num' }, formatBytes(b)), h('td', {})));
    const rows = h('tbody', { class: 'group-rows', hidden: true });
    const g: Group = { prefix, tensors, params: p, bytes: b, open: false, header, rows, toggle };
    toggle.addEventListener('click', () => setOpen(g, toggle.getAttribute('aria-expanded') !== 'true'));
    table.append(header, rows);
    if (openAll) setOpen(g, true);
    return g;
  });
  table.append(h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, `Total: ${fmt(s.tensors.length)} tensors`),
    h('td', { class: 'num' }, fmt(s.totalParams)), h('td', { class: 'num' }, formatBytes(s.totalBytes)), h('td', {}))));

  const filter = h('input', { type: 'search', class: 'filter', placeholder: 'Filter tensors by name', 'aria-label': 'Filter tensors by name' });
  filter.value = filterText;
  filter.addEventListener('input', () => {
    filterText = filter.value.trim();
    applyFilter();
  });
  const expand = h('button', { type: 'button', class: 'secondary' }, 'Expand all');
  expand.addEventListener('click', () => groups.forEach((g) => setOpen(g, true)));
  const collapse = h('button', { type: 'button', class: 'secondary' }, 'Collapse all');
  collapse.addEventListener('click', () => groups.forEach((g) => setOpen(g, false)));
  const scan = h('button', { type: 'button', class: 'scan-button', title: 'Statistics of every tensor; NaN, Inf, all-zero, constant and extreme tensors are flagged' }, 'Scan for problems');
  scan.addEventListener('click', () => {
    scanStatus = 'Scanning every tensor…';
    for (const bar of root.querySelectorAll('.scan-bar')) bar.textContent = scanStatus;
    api.postMessage({ type: 'scan' });
  });
  return section('Tensors', 'tensors-h', h('div', { class: 'toolbar' }, filter, expand, collapse, scan), scanBar(), h('div', { class: 'table-scroll' }, table));
}

function render(s: InspectorState): void {
  current = s;
  clear(root);
  const title = h('h1', { title: s.path }, s.path.split(/[\\/]/).pop() ?? s.path);
  if (s.error) {
    // Nothing was read: no format, counts or size to show (they would read "0 B").
    root.append(h('main', { class: 'inspector' }, h('header', {}, title, h('p', { class: 'hint mono' }, s.path)), h('p', { class: 'error', role: 'alert' }, s.error)));
    return;
  }
  const head = h('header', {}, title,
    h('p', { class: 'hint mono' }, s.path),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Format'), h('dd', {}, s.format)),
      h('div', {}, h('dt', {}, 'Tensors'), h('dd', {}, fmt(s.tensors.length))),
      h('div', {}, h('dt', {}, 'Parameters'), h('dd', {}, fmt(s.totalParams))),
      h('div', {}, h('dt', {}, 'Size'), h('dd', {}, formatBytes(s.totalBytes)))));
  root.append(h('main', { class: 'inspector' }, head, architectureSection(s), tensorSection(s), metadataSection(s)));
  if (filterText || onlyFlagged) applyFilter();
}

const saved = api.getState();
if (saved) {
  try {
    render(inspectorState(saved));
  } catch (e) {
    console.warn(`[rebasin] dropped saved state: ${e instanceof Error ? e.message : String(e)}`);
  }
}
onMessages(toInspector, (m) => {
  switch (m.type) {
    case 'init':
      stats.clear();
      scanFlags = undefined;
      onlyFlagged = false;
      scanStatus = '';
      render(m.state);
      api.setState(m.state);
      break;
    case 'stats':
      stats.set(m.tensor, { status: 'done', stats: m.stats });
      refreshStats(m.tensor);
      break;
    case 'statsError':
      stats.set(m.tensor, { status: 'error', message: m.message });
      refreshStats(m.tensor);
      break;
    case 'statsCancelled':
      stats.set(m.tensor, { status: 'cancelled' });
      refreshStats(m.tensor);
      break;
    case 'scan':
      showScan(m.scan);
      if (current) render(current);
      break;
    case 'scanStopped':
      scanStatus = m.message;
      for (const bar of root.querySelectorAll('.scan-bar')) bar.textContent = scanStatus;
      break;
    case 'statsProgress': {
      const e = stats.get(m.tensor);
      if (e?.status !== 'loading') break;
      e.fraction = m.fraction;
      e.message = m.message;
      e.timeLeft = m.timeLeft;
      if (!updateProgress(m.tensor)) refreshStats(m.tensor);
      break;
    }
  }
});
watchTheme(() => {
  for (const [name, e] of stats) if (e.status === 'done') refreshStats(name);
  void current;
});
api.postMessage({ type: 'ready' });
