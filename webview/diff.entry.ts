/**
 * Diff view webview ("Compare with…"): waits for `init` from the extension (after posting
 * `ready`), renders the DiffView, posts exports, scan and tensor-picture requests (handing the
 * pictures back to the view), follows theme changes, and
 * keeps the UI choices (sort, filter) with `vscode.setState`.
 */
import { DiffView, defaultDiffUi, type DiffUiState } from './diffView';
import { h, vscodeApi } from './dom';
import type { FromDiff } from './protocol';
import { watchTheme } from './theme';
import { toDiff } from './validate';
import { onMessages } from './onMessages';

interface Persisted {
  ui: DiffUiState;
}

const api = vscodeApi<FromDiff, Persisted>();
const root = document.getElementById('root') ?? document.body.appendChild(h('div', { id: 'root' }));
const persisted: Persisted = api.getState() ?? { ui: defaultDiffUi() };
let view: DiffView | undefined;

root.append(h('p', { class: 'loading', role: 'status' }, 'Waiting for the comparison…'));

onMessages(toDiff, (m) => {
  if (m.type === 'tensor') return view?.showPicture(m.picture);
  if (m.type === 'tensorError') return view?.showPictureError(m.tensor, m.message);
  view?.dispose();
  root.textContent = '';
  view = new DiffView(
    m.state,
    {
      exportCsv: (csv, suggestedName) => api.postMessage({ type: 'exportCsv', csv, suggestedName }),
      exportPng: (dataUrl, suggestedName) => api.postMessage({ type: 'exportPng', dataUrl, suggestedName }),
      scan: () => api.postMessage({ type: 'scan' }),
      showTensor: (tensor) => api.postMessage({ type: 'showTensor', tensor }),
    },
    persisted.ui,
    (ui) => {
      persisted.ui = ui;
      api.setState(persisted);
    },
  );
  view.mount(root);
  (window as unknown as { __diffView?: DiffView }).__diffView = view;
});
watchTheme(() => view?.refreshTheme());
api.postMessage({ type: 'ready' });
