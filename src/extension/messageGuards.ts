/**
 * Checks every message a webview posts before the extension acts on it, with the view's schemas
 * (shared/messages/, registered in shared/messages/views.ts). A webview is untrusted input:
 * unknown types, wrong field types, oversized payloads and unsafe file names are dropped (and
 * logged by the caller).
 */
import * as v from 'valibot';
import { VIEW_MESSAGES, type ViewName } from '../../shared/messages/views';
import type { FromAlignment, FromBarriers, FromDiff, FromInspector, ViewMessages } from '../../webview/protocol';

function fromView<N extends ViewName>(view: N, x: unknown): ViewMessages[N]['from'] | undefined {
  const r = v.safeParse(VIEW_MESSAGES[view].from, x, { abortEarly: true });
  return r.success ? (r.output as ViewMessages[N]['from']) : undefined;
}

export const asFromAlignment = (x: unknown): FromAlignment | undefined => fromView('alignment', x);
export const asFromBarriers = (x: unknown): FromBarriers | undefined => fromView('barriers', x);
export const asFromInspector = (x: unknown): FromInspector | undefined => fromView('inspector', x);
export const asFromDiff = (x: unknown): FromDiff | undefined => fromView('diff', x);
