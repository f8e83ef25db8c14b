/**
 * The demo's self-contained report page: reads the JSON blob in
 * `<script type="application/json" id="report-data">` (see reportData.ts), draws the alignment
 * panel's heatmaps and plot with the same modules, and the results tables. Exports download
 * straight from the page (no extension host). Theme: the reader's `prefers-color-scheme`, switchable.
 */
import { AlignmentView, defaultUiState } from './alignmentView';
import { fmt, h } from './dom';
import { decodeReportData, type ReportData, type ReportTable } from './reportData';
import { watchTheme } from './theme';
import { alignmentState } from './validate';

function download(href: string, name: string): void {
  const a = h('a', { href, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function downloadText(text: string, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  download(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function table(t: ReportTable): HTMLElement {
  // A column is numeric (right-aligned) when any of its cells is a number.
  const numeric = t.columns.map((_, k) => t.rows.some((r) => typeof r[k] === 'number'));
  const cls = (k: number) => (numeric[k] ? 'num' : undefined);
  const cell = (v: string | number | null, k: number) => h('td', { class: cls(k) }, typeof v === 'number' ? fmt(v) : v ?? '–');
  return h('section', { class: 'report-table' }, h('h2', {}, t.title),
    h('div', { class: 'table-scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ...t.columns.map((c, k) => h('th', { scope: 'col', class: cls(k) }, c)))),
      h('tbody', {}, ...t.rows.map((r) => h('tr', {}, ...r.map(cell)))))),
    t.note ? h('p', { class: 'hint' }, t.note) : '');
}

function setTheme(dark: boolean): void {
  document.body.classList.remove('vscode-light', 'vscode-dark');
  document.body.classList.add(dark ? 'vscode-dark' : 'vscode-light');
}

function main(): void {
  const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
  if (!document.body.classList.contains('vscode-light') && !document.body.classList.contains('vscode-dark')) {
    setTheme(window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false);
  }
  let data: ReportData;
  try {
    data = decodeReportData(document.getElementById('report-data')?.textContent ?? '');
  } catch (e) {
    root.append(h('p', { class: 'error', role: 'alert' }, `report: cannot read the embedded data: ${e instanceof Error ? e.message : String(e)}`));
    return;
  }
  const themeBtn = h('button', { type: 'button', class: 'secondary theme-toggle', 'aria-label': 'Switch light or dark theme' }, 'Light / dark');
  themeBtn.addEventListener('click', () => setTheme(!document.body.classList.contains('vscode-dark')));
  root.append(h('header', { class: 'report-head' },
    h('div', {}, h('h1', {}, data.title), data.subtitle ? h('p', { class: 'hint' }, data.subtitle) : '',
      h('p', { class: 'hint' }, `Generated ${new Date(data.generatedAt).toLocaleString()}`)),
    themeBtn));
  for (const n of data.notes ?? []) root.append(h('p', { class: 'note' }, n));
  for (const t of data.tables ?? []) root.append(table(t));
  if (data.alignment) {
    try {
      const view = new AlignmentView(alignmentState(data.alignment, 'alignment'), {
        exportCsv: (csv, name) => downloadText(csv, name, 'text/csv'),
        exportPng: (url, name) => download(url, name),
      }, defaultUiState(), () => undefined);
      view.mount(root);
      watchTheme(() => view.refreshTheme());
    } catch (e) {
      root.append(h('p', { class: 'error', role: 'alert' }, `report: ${e instanceof Error ? e.message : String(e)}`));
    }
  }
}

main();
