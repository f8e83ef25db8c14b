/**
 * Every webview's messages, registered in one place: for each view, the schemas of the messages
 * the extension sends it (by `type`) and of those it posts back. webview/validate.ts checks
 * arriving messages with the first, src/extension/messageGuards.ts with the second.
 */
import type * as v from 'valibot';
import { fromAlignmentSchema, TO_ALIGNMENT } from './alignment';
import { fromBarriersSchema, TO_BARRIERS } from './barriers';
import { fromDiffSchema, TO_DIFF } from './diff';
import { fromInspectorSchema, TO_INSPECTOR } from './inspector';

export const VIEW_MESSAGES = {
  alignment: { to: TO_ALIGNMENT, from: fromAlignmentSchema },
  barriers: { to: TO_BARRIERS, from: fromBarriersSchema },
  inspector: { to: TO_INSPECTOR, from: fromInspectorSchema },
  diff: { to: TO_DIFF, from: fromDiffSchema },
} as const;

export type ViewName = keyof typeof VIEW_MESSAGES;

/** The union of a view's messages from the extension. */
export type ToView<N extends ViewName> = {
  [T in keyof (typeof VIEW_MESSAGES)[N]['to']]: v.InferOutput<(typeof VIEW_MESSAGES)[N]['to'][T] & v.GenericSchema>;
}[keyof (typeof VIEW_MESSAGES)[N]['to']];

/** The union of a view's messages to the extension. */
export type FromView<N extends ViewName> = v.InferOutput<(typeof VIEW_MESSAGES)[N]['from']>;
