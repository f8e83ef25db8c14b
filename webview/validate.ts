/**
 * Checks every message arriving in a webview with its view's schemas (shared/messages/). Each
 * function returns the message (numeric arrays of heatmaps normalised to Float32Array, unknown
 * fields dropped) or throws a `MessageError` whose one-line message names the field that broke
 * the rule ("message: `state.title` must be a string"); the views log it and keep running.
 */
import * as v from 'valibot';
import { alignmentStateSchema } from '../shared/messages/alignment';
import { barriersStateSchema } from '../shared/messages/barriers';
import { inspectorStateSchema } from '../shared/messages/inspector';
import { VIEW_MESSAGES, type ToView, type ViewName } from '../shared/messages/views';
import { firstIssue, issueSegments, obj, type Schema } from '../shared/schema/rules';
import { attentionLayerSchema } from '../shared/schema/attention';
import { barrierCurveSchema } from '../shared/schema/results';
import type { AlignmentState, AttentionLayer, BarrierCurve, BarriersState, InspectorState, ToAlignment, ToBarriers, ToDiff, ToInspector } from './protocol';

export class MessageError extends Error {
  readonly kind = 'InvalidMessage';
  constructor(message: string) {
    super(message);
    this.name = 'MessageError';
  }
}

/** "message: `state.runs[0].kind` must be align, merge or barrier" (a state's path starts at `state`). */
function issueText(root: string, issue: v.BaseIssue<unknown>): string {
  const segments = issueSegments(issue);
  const path = segments[0]?.startsWith('state') ? segments.join('.') : [root, ...segments].join('.');
  return `message: \`${path}\` ${issue.message}`;
}

function check<T>(schema: Schema<T>, x: unknown, root: string): T {
  const r = firstIssue(schema, x);
  if (!r.ok) throw new MessageError(issueText(root, r.issue));
  return r.value;
}

const VIEW_TITLES: Record<ViewName, string> = { alignment: 'the alignment view', barriers: 'the barrier view', inspector: 'the inspector view', diff: 'the diff view' };

/** One view's message: its `type` first, then that type's schema. */
function toView<N extends ViewName>(view: N, x: unknown): ToView<N> {
  const schemas = VIEW_MESSAGES[view].to as Record<string, Schema<unknown>>;
  const types = Object.keys(schemas);
  const typeOnly = obj({
    type: v.custom<string>((t) => typeof t === 'string' && types.includes(t), (issue) => `${JSON.stringify(issue.input) ?? 'undefined'} is not a message of ${VIEW_TITLES[view]}`),
  });
  const { type } = check(typeOnly, x, 'message');
  return check(schemas[type], x, 'message') as ToView<N>;
}

export const toAlignment = (x: unknown): ToAlignment => toView('alignment', x);
export const toBarriers = (x: unknown): ToBarriers => toView('barriers', x);
export const toInspector = (x: unknown): ToInspector => toView('inspector', x);
export const toDiff = (x: unknown): ToDiff => toView('diff', x);

/** A state on its own (the alignment view's persisted state, the report's data). */
export const alignmentState = (x: unknown, root = 'state'): AlignmentState => check(alignmentStateSchema, x, root);
export const barriersState = (x: unknown, root = 'state'): BarriersState => check(barriersStateSchema, x, root);
export const inspectorState = (x: unknown, root = 'state'): InspectorState => check(inspectorStateSchema, x, root);
export const barrierCurve = (x: unknown, root: string): BarrierCurve => check(barrierCurveSchema, x, root);
export const attentionLayer = (x: unknown, root: string): AttentionLayer => check(attentionLayerSchema, x, root);
