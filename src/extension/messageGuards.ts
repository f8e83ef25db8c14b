/**
 * Checks every message a webview posts before the extension acts on it. A webview is untrusted
 * input: unknown types, wrong field types and oversized payloads are dropped (and logged).
 */
import type { FromAlignment, FromBarriers, FromInspector } from '../../webview/protocol';

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function shortString(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= max;
}

/** File names suggested by a webview: one path segment, no control characters. */
function safeFileName(x: unknown): x is string {
  return shortString(x, 200) && !/[\\/\u0000-\u001f]/.test(x) && x !== '.' && x !== '..';
}

const MAX_EXPORT_CHARS = 64 * 1024 * 1024;

export function asFromAlignment(x: unknown): FromAlignment | undefined {
  if (!isObj(x)) return undefined;
  switch (x.type) {
    case 'ready':
      return { type: 'ready' };
    case 'exportCsv':
      return typeof x.csv === 'string' && x.csv.length <= MAX_EXPORT_CHARS && safeFileName(x.suggestedName)
        ? { type: 'exportCsv', csv: x.csv, suggestedName: x.suggestedName }
        : undefined;
    case 'exportPng':
      return typeof x.dataUrl === 'string' &&
        x.dataUrl.length <= MAX_EXPORT_CHARS &&
        x.dataUrl.startsWith('data:image/png;base64,') &&
        safeFileName(x.suggestedName)
        ? { type: 'exportPng', dataUrl: x.dataUrl, suggestedName: x.suggestedName }
        : undefined;
    case 'openFile':
      return x.which === 'a' || x.which === 'b' || x.which === 'out' ? { type: 'openFile', which: x.which } : undefined;
    default:
      return undefined;
  }
}

export function asFromBarriers(x: unknown): FromBarriers | undefined {
  if (!isObj(x)) return undefined;
  switch (x.type) {
    case 'ready':
      return { type: 'ready' };
    case 'openRun':
    case 'deleteRun':
      return shortString(x.id, 100) ? { type: x.type, id: x.id } : undefined;
    case 'clearRuns':
      return { type: 'clearRuns' };
    default:
      return undefined;
  }
}

export function asFromInspector(x: unknown): FromInspector | undefined {
  if (!isObj(x)) return undefined;
  switch (x.type) {
    case 'ready':
      return { type: 'ready' };
    case 'requestStats':
    case 'cancelStats':
      return shortString(x.tensor, 10_000) ? { type: x.type, tensor: x.tensor } : undefined;
    default:
      return undefined;
  }
}
