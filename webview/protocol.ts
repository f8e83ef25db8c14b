/**
 * Typed messages between the extension host and each webview (alignment panel, barrier side
 * view, checkpoint inspector). Handshake for every view: the webview posts `{type:'ready'}`,
 * the extension answers `{type:'init', state}`. The types come from the schemas in
 * `shared/messages/` (registered in `shared/messages/views.ts`): messages received by a webview
 * are checked with them by `webview/validate.ts` (invalid ones are logged and dropped), messages
 * posted by a webview by `src/extension/messageGuards.ts`. A new field goes into its schema
 * there. Types only: safe to `import type` from the extension host.
 *
 * Hosting a view (extension side): HTML with the CSP
 *   default-src 'none'; img-src ${cspSource} data:; style-src ${cspSource}; script-src 'nonce-N'; font-src ${cspSource}
 * linking `media/webview.css` and `media/<view>.css`, an optional `<div id="root">` (created when
 * missing), and `<script nonce="N" src="dist/webview/<view>.js">` where <view> is alignment,
 * barriers or inspector; `localResourceRoots` = [dist, media]. Answer `ready` with `init` every
 * time (the webview re-posts `ready` after being hidden and restored). Float32Arrays may be sent
 * as Float32Array, number[] or `{$f32: base64}` (shared/float32Json.ts).
 */
import type * as v from 'valibot';
import type * as alignment from '../shared/messages/alignment';
import type * as barriers from '../shared/messages/barriers';
import type * as diff from '../shared/messages/diff';
import type * as diffResults from '../shared/schema/diff';
import type * as inspector from '../shared/messages/inspector';
import type { FromView, ToView, VIEW_MESSAGES } from '../shared/messages/views';
import type { DeepReadonly } from '../shared/schema/rules';
import type { BackendName } from '../src/engine/protocol';

import type * as results from '../shared/schema/results';
import type * as attention from '../shared/schema/attention';
import type * as experts from '../shared/schema/experts';

export type BarrierCurve = DeepReadonly<results.BarrierCurve>;
export type GroupSummary = DeepReadonly<results.GroupSummary>;
export type PathMetrics = DeepReadonly<results.PathMetrics>;
export type TensorStatsResult = DeepReadonly<results.TensorStatsResult>;
export type AttentionLayer = DeepReadonly<attention.AttentionLayer>;
export type InnerPermutation = DeepReadonly<attention.InnerPermutation>;
export type ExpertLayer = DeepReadonly<experts.ExpertLayer>;
export type { BackendName };

/** Posted by every webview once its script has started and can receive `init`. */
export interface ReadyMessage {
  readonly type: 'ready';
}

// ---------------------------------------------------------------- alignment panel

export type ModelRef = DeepReadonly<v.InferOutput<typeof alignment.modelRefSchema>>;
export type HeatmapData = DeepReadonly<v.InferOutput<typeof alignment.heatmapDataSchema>>;
export type DataProvenance = DeepReadonly<v.InferOutput<typeof alignment.dataProvenanceSchema>>;
export type PathDistance = DeepReadonly<v.InferOutput<typeof alignment.pathDistanceSchema>>;
export type OrthogonalState = DeepReadonly<v.InferOutput<typeof alignment.orthogonalStateSchema>>;
export type AlignmentState = DeepReadonly<v.InferOutput<typeof alignment.alignmentStateSchema>>;
export type ToAlignment = DeepReadonly<ToView<'alignment'>>;
export type FromAlignment = DeepReadonly<FromView<'alignment'>>;

// ---------------------------------------------------------------- barrier side view

export type RunKind = (typeof barriers.RUN_KINDS)[number];
export type RunSummary = DeepReadonly<v.InferOutput<typeof barriers.runSummarySchema>>;
export type BarriersState = DeepReadonly<v.InferOutput<typeof barriers.barriersStateSchema>>;
export type ToBarriers = DeepReadonly<ToView<'barriers'>>;
export type FromBarriers = DeepReadonly<FromView<'barriers'>>;

// ---------------------------------------------------------------- inspector

export type InspectorTensor = DeepReadonly<v.InferOutput<typeof inspector.inspectorTensorSchema>>;
export type ArchitectureInfo = DeepReadonly<v.InferOutput<typeof inspector.architectureInfoSchema>>;
export type InspectorState = DeepReadonly<v.InferOutput<typeof inspector.inspectorStateSchema>>;
export type ToInspector = DeepReadonly<ToView<'inspector'>>;
export type FromInspector = DeepReadonly<FromView<'inspector'>>;

// ---------------------------------------------------------------- diff view

export type DiffResult = DeepReadonly<diffResults.DiffResult>;
export type ScanResult = DeepReadonly<diffResults.ScanResult>;
export type TensorPicture = DeepReadonly<diffResults.TensorPictureResult>;
export type DiffState = DeepReadonly<v.InferOutput<typeof diff.diffStateSchema>>;
export type ToDiff = DeepReadonly<ToView<'diff'>>;
export type FromDiff = DeepReadonly<FromView<'diff'>>;

/** Which view a message belongs to (handy for generic host-side helpers). */
export type ViewMessages = { [N in keyof typeof VIEW_MESSAGES]: { to: DeepReadonly<ToView<N>>; from: DeepReadonly<FromView<N>> } };
