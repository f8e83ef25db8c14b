/**
 * Alignment panel webview: waits for `init` from the extension (after posting `ready`), renders
 * the AlignmentView, posts exports/open requests, follows theme changes, and keeps its state with
 * `vscode.setState` (UI choices always; the data too when small enough) so it survives being hidden.
 */
import { AlignmentView, defaultUiState, type AlignmentUiState } from './alignmentView';
import { h, vscodeApi } from './dom';
import type { AlignmentState, FromAlignment } from './protocol';
import { typedArrayReplacer, typedArrayReviver } from '../shared/float32Json';
import { watchTheme } from './theme';
import { alignmentState, toAlignment } from './validate';
import { onMessages } from './onMessages';

interface Persisted {
  ui: AlignmentUiState;
  /** The panel's title: after a window reload the extension finds the run by it when `data` was too large to keep. */
  title?: string;
  /** AlignmentState as JSON with base64 typed arrays; omitted when too large. */
  data?: string;
}

/** Above this many matrix bytes the data is not kept in webview state (the host re-sends it on `ready`). */
const PERSIST_LIMIT_BYTES = 16 * 1024 * 1024;

const api = vscodeApi<FromAlignment, Persisted>();
const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
let view: AlignmentView | undefined;
let persisted: Persisted = api.getState() ?? { ui: defaultUiState() };

function save(state?: AlignmentState): void {
  if (state) {
    persisted.title = state.title;
    const bytes = state.heatmaps.reduce((a, m) => a + (m.before.byteLength + m.after.byteLength), 0) +
      (state.orthogonal?.maps ?? []).reduce((a, m) => a + (m.picture?.values.byteLength ?? 0), 0);
    persisted.data = bytes <= PERSIST_LIMIT_BYTES ? JSON.stringify(state, typedArrayReplacer) : undefined;
  }
  api.setState(persisted);
}

function show(state: AlignmentState): void {
  view?.dispose();
  root.textContent = '';
  view = new AlignmentView(
    state,
    {
      exportCsv: (csv, suggestedName) => api.postMessage({ type: 'exportCsv', csv, suggestedName }),
      exportPng: (dataUrl, suggestedName) => api.postMessage({ type: 'exportPng', dataUrl, suggestedName }),
      openFile: (which) => api.postMessage({ type: 'openFile', which }),
    },
    persisted.ui,
    (ui) => {
      persisted.ui = ui;
      save();
    },
  );
  view.mount(root);
}

if (persisted.data) {
  try {
    show(alignmentState(JSON.parse(persisted.data, typedArrayReviver)));
  } catch (e) {
    console.warn(`[rebasin] dropped saved state: ${e instanceof Error ? e.message : String(e)}`);
    persisted = { ui: defaultUiState() };
  }
}
if (!view) root.append(h('p', { class: 'loading', role: 'status' }, 'Waiting for alignment results…'));

onMessages(toAlignment, (m) => {
  if (m.type === 'curve') {
    // Only the curve changed: keep the heatmaps as they are.
    if (!view) return;
    view.setCurve(m.curve, m.curveNote, m.data);
    save(view.currentState);
    return;
  }
  show(m.state);
  save(m.state);
});
watchTheme(() => view?.refreshTheme());
api.postMessage({ type: 'ready' });
