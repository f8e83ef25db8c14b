/**
 * Barrier side view: a list of past runs (pair, method, a small naive-vs-aligned loss chart,
 * barrier values, or a comparison's relative change, backend, duration). Click or Enter opens a run, the delete button removes it,
 * "Clear all" removes every run. State arrives as `init`/`update` after the `ready` handshake.
 */
import { barrierChart, type LineChart } from './charts';
import { clear, fmt, fmtSeconds, h, vscodeApi } from './dom';
import type { BarriersState, FromBarriers, RunSummary } from './protocol';
import { readTheme, watchTheme } from './theme';
import { barriersState, toBarriers } from './validate';
import { onMessages } from './onMessages';

const api = vscodeApi<FromBarriers, BarriersState>();
const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
let charts: LineChart[] = [];
let current: BarriersState | undefined;

function when(iso: string): string {
  const d = new Date(iso);
  // Seconds included: two runs of the same pair a minute apart must not read alike.
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** A model's name without the `.safetensors` every one of them has. */
function stem(name: string): string {
  return name.replace(/\.safetensors\.index\.json$/i, '').replace(/\.safetensors$/i, '');
}

/** Why a run has no curve, in its own terms (a merge never computes one). */
function noCurveText(run: RunSummary): string {
  if (run.note) return run.note;
  if (run.kind === 'merge') return run.out ? `wrote ${run.out}` : 'merge (no loss curve)';
  if (run.kind === 'barrier') return 'no curve recorded';
  if (run.kind === 'diff') return 'comparison: open it for the table, the per-layer chart and the tensors';
  return 'no loss curve: no evaluation data was set';
}

function runCard(run: RunSummary, pending: (() => void)[]): HTMLElement {
  const pair = run.kind === 'merge' && run.others && run.others.length > 0
    ? `${stem(run.a)} + ${[run.b, ...run.others].map(stem).join(' + ')}`
    : `${stem(run.a)} ↔ ${stem(run.b)}`;
  const del = h('button', { type: 'button', class: 'icon delete', 'aria-label': `Delete run ${pair}`, title: 'Delete run' }, '✕');
  // The coloured words double as the mini chart's legend (red naive, blue aligned).
  const barrier = run.barrier
    ? h('p', { class: 'barrier' }, 'barrier: ', h('span', { class: 'naive' }, 'naive'), ` ${fmt(run.barrier.naive, 3)}`,
      run.barrier.aligned !== undefined ? ' · ' : '', run.barrier.aligned !== undefined ? h('span', { class: 'aligned' }, 'aligned') : '',
      run.barrier.aligned !== undefined ? ` ${fmt(run.barrier.aligned, 3)}` : '')
    : '';
  // A comparison's figure: how far B is from A in total, naive and after alignment (same colours).
  const pct = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : `${fmt(100 * x, 3)}%`);
  const change = run.change
    ? h('p', { class: 'barrier change' }, 'relative change: ', h('span', { class: 'naive' }, 'naive'), ` ${pct(run.change.naive)}`,
      run.change.aligned !== undefined ? ' · ' : '', run.change.aligned !== undefined ? h('span', { class: 'aligned' }, 'aligned') : '',
      run.change.aligned !== undefined ? ` ${pct(run.change.aligned)}` : '')
    : '';
  let plot: HTMLElement;
  if (run.curve) {
    const canvas = h('canvas', { class: 'mini-chart', role: 'img', 'aria-label': `Loss along the path for ${pair}: naive and aligned` });
    plot = h('div', { class: 'mini-chart-box' }, canvas);
    const curve = run.curve;
    pending.push(() => charts.push(barrierChart(canvas, curve, readTheme(), true)));
  } else {
    plot = h('p', { class: 'hint' }, noCurveText(run));
  }
  // What tells runs of the same pair apart: where, with which seed and method, and when.
  const where = [run.folder ? `${run.folder}/` : '', run.method, run.seed !== undefined ? `seed ${run.seed}` : '', when(run.createdAt)].filter(Boolean).join(' · ');
  const li = h('li', { class: `run run-${run.kind}`, tabindex: 0, 'data-run-id': run.id, 'aria-label': `${run.kind} run ${pair}, ${run.method}. Press Enter to open.` },
    h('div', { class: 'run-head' }, h('span', { class: 'kind' }, run.kind), h('span', { class: 'pair', title: pair }, pair), del),
    h('p', { class: 'meta', title: run.interrupted ? where : `${where} · ${fmtSeconds(run.seconds)} on ${run.backend}` }, where),
    h('p', { class: 'meta' }, run.interrupted ? 'interrupted: no time or backend recorded' : `${fmtSeconds(run.seconds)} on ${run.backend}`),
    barrier, change, plot);
  li.addEventListener('click', () => api.postMessage({ type: 'openRun', id: run.id }));
  li.addEventListener('keydown', (e) => {
    if (e.target !== li) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      api.postMessage({ type: 'openRun', id: run.id });
    } else if (e.key === 'Delete') {
      e.preventDefault();
      askDelete(li, run.id, pair);
    }
  });
  del.addEventListener('click', (e) => {
    e.stopPropagation();
    askDelete(li, run.id, pair);
  });
  return li;
}

/**
 * ✕ (or Delete) asks first, inside the card: a run deleted from the history cannot be brought
 * back. "Keep" (or Escape) puts the card back as it was.
 */
function askDelete(li: HTMLElement, id: string, pair: string): void {
  if (li.querySelector('.confirm-delete')) return;
  const yes = h('button', { type: 'button', class: 'danger' }, 'Delete');
  const no = h('button', { type: 'button', class: 'secondary' }, 'Keep');
  const box = h('div', { class: 'confirm-delete', role: 'group', 'aria-label': `Delete run ${pair}?` },
    h('span', {}, 'Delete this run from the history? Checkpoint files are kept.'), yes, no);
  const close = (): void => {
    box.remove();
    li.focus();
  };
  yes.addEventListener('click', (e) => {
    e.stopPropagation();
    api.postMessage({ type: 'deleteRun', id });
  });
  no.addEventListener('click', (e) => {
    e.stopPropagation();
    close();
  });
  box.addEventListener('click', (e) => e.stopPropagation());
  box.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Escape') close();
  });
  li.querySelector('.run-head')?.after(box);
  no.focus();
}

function render(state: BarriersState): void {
  current = state;
  for (const c of charts) c.destroy();
  charts = [];
  clear(root);
  if (state.runs.length === 0) {
    root.append(state.trusted === false ? restrictedState() : h('div', { class: 'empty-state' },
      h('p', {}, 'No runs yet.'),
      h('p', { class: 'hint' }, 'Right-click a .safetensors checkpoint in the Explorer and choose "Align with…", "Compute barrier with…" or "Compare with…", or run "Re-Basin: Merge checkpoints…" from the Command Palette.')));
    return;
  }
  const clearAll = h('button', { type: 'button', class: 'secondary clear-all' }, 'Clear all');
  clearAll.addEventListener('click', () => api.postMessage({ type: 'clearRuns' }));
  const pending: (() => void)[] = [];
  const list = h('ul', { class: 'runs', 'aria-label': 'Runs, newest first' });
  const runs = [...state.runs].sort((x, y) => y.createdAt.localeCompare(x.createdAt));
  for (const r of runs) list.append(runCard(r, pending));
  root.append(h('div', { class: 'toolbar' }, h('span', { class: 'count' }, `${state.runs.length} run${state.runs.length === 1 ? '' : 's'}`), h('span', { class: 'spacer' }), clearAll), list);
  for (const p of pending) p();
}

/** Restricted Mode hides the commands that make runs: say so, and how to trust the folder. */
function restrictedState(): HTMLElement {
  const trust = h('button', { type: 'button' }, 'Manage Workspace Trust…');
  trust.addEventListener('click', () => api.postMessage({ type: 'manageTrust' }));
  return h('div', { class: 'empty-state restricted' },
    h('p', {}, 'No runs yet. This folder is in Restricted Mode.'),
    h('p', { class: 'hint' }, 'In Restricted Mode Re-Basin only inspects checkpoints: aligning, merging and computing barriers run over workspace files, so their commands are hidden. ' +
      'To use them, trust this folder: click "Restricted Mode" in the status bar, or run "Workspaces: Manage Workspace Trust" from the Command Palette, and choose "Trust".'),
    trust);
}

const saved = api.getState();
if (saved) {
  try {
    render(barriersState(saved));
  } catch (e) {
    console.warn(`[rebasin] dropped saved state: ${e instanceof Error ? e.message : String(e)}`);
  }
}
onMessages(toBarriers, (m) => {
  render(m.state);
  api.setState(m.state);
});
watchTheme(() => current && render(current));
api.postMessage({ type: 'ready' });
