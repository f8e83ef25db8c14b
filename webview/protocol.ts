/**
 * Typed messages between the extension host and each webview (alignment panel, barrier side
 * view, checkpoint inspector). Handshake for every view: the webview posts `{type:'ready'}`,
 * the extension answers `{type:'init', state}`. Messages received by a webview are checked by
 * the hand-written guards in `webview/validate.ts` before use; invalid ones are logged and dropped.
 * Types only: safe to `import type` from the extension host.
 *
 * Hosting a view (extension side): HTML with the CSP
 *   default-src 'none'; img-src ${cspSource} data:; style-src ${cspSource}; script-src 'nonce-N'; font-src ${cspSource}
 * linking `media/webview.css` and `media/<view>.css`, an optional `<div id="root">` (created when
 * missing), and `<script nonce="N" src="dist/webview/<view>.js">` where <view> is alignment,
 * barriers or inspector; `localResourceRoots` = [dist, media]. Answer `ready` with `init` every
 * time (the webview re-posts `ready` after being hidden and restored). Float32Arrays may be sent
 * as Float32Array, number[] or `{$f32: base64}` (see reportData.ts).
 */
import type {
  BackendName,
  BarrierCurve,
  GroupSummary,
  TensorStatsResult,
  AttentionLayer,
  InnerPermutation,
} from '../src/engine/protocol';

export type { BarrierCurve, GroupSummary, TensorStatsResult, BackendName, AttentionLayer, InnerPermutation };

/** Posted by every webview once its script has started and can receive `init`. */
export interface ReadyMessage {
  readonly type: 'ready';
}

// ---------------------------------------------------------------- alignment panel

export interface ModelRef {
  /** Display name (usually the file name). */
  readonly name: string;
  readonly path: string;
}

/**
 * Similarity of A's units (rows) against B's units (columns) for one permutation group,
 * row-major `size × size`. The sender may downsample to at most 1024 per side; `size` is the
 * matrix side actually sent and `originalSize` the group's true size (defaults to `size`).
 * `perm[i]` is the B unit moved to position i (gather indices, length `originalSize`).
 */
export interface HeatmapData {
  readonly name: string;
  readonly size: number;
  readonly originalSize?: number;
  readonly perm: readonly number[];
  readonly before: Float32Array;
  readonly after: Float32Array;
}

/** Weight-space distances ‖A − B‖ (naive) and ‖A − π(B)‖ (aligned). */
export interface PathDistance {
  readonly naive: number;
  readonly aligned: number;
}

export interface AlignmentState {
  readonly title: string;
  readonly a: ModelRef;
  readonly b: ModelRef;
  readonly out?: ModelRef;
  readonly method: string;
  readonly backend: BackendName | string;
  readonly seconds: number;
  readonly iterations: number;
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
  readonly groups: readonly GroupSummary[];
  readonly heatmaps: readonly HeatmapData[];
  /** Loss/accuracy along the linear path; when absent the distance plot is shown instead. */
  readonly curve?: BarrierCurve;
  /**
   * Why there is no curve although the run has evaluation data ("Loss curve cancelled.",
   * "Computing the loss curve…"); the distance plot is shown under it.
   */
  readonly curveNote?: string;
  readonly distance?: PathDistance;
  /**
   * The attention layers of the run's spec (heads, KV groups, inner permutations): their heatmaps
   * are shown per layer under one "Attention heads" tab instead of one tab per group.
   */
  readonly attention?: readonly AttentionLayer[];
}

export type ToAlignment =
  | { readonly type: 'init'; readonly state: AlignmentState }
  | { readonly type: 'update'; readonly state: AlignmentState }
  /** The loss curve arrived (or changed, or was given up: `curveNote`) after the heatmaps; only the curve section is redrawn. */
  | { readonly type: 'curve'; readonly curve?: BarrierCurve; readonly curveNote?: string };

export type FromAlignment =
  | ReadyMessage
  /** Save `csv` with a save dialog (suggested file name given). */
  | { readonly type: 'exportCsv'; readonly csv: string; readonly suggestedName: string }
  /** Save a PNG given as a `data:image/png;base64,...` URL. */
  | { readonly type: 'exportPng'; readonly dataUrl: string; readonly suggestedName: string }
  | { readonly type: 'openFile'; readonly which: 'a' | 'b' | 'out' };

// ---------------------------------------------------------------- barrier side view

export type RunKind = 'align' | 'merge' | 'barrier';

export interface RunSummary {
  readonly id: string;
  readonly kind: RunKind;
  /** Display names of the two models (merge: reference and first other). */
  readonly a: string;
  readonly b: string;
  readonly others?: readonly string[];
  readonly method: string;
  /** ISO 8601 time. */
  readonly createdAt: string;
  readonly backend: string;
  readonly seconds: number;
  readonly barrier?: { readonly naive: number; readonly aligned?: number };
  readonly curve?: BarrierCurve;
  readonly out?: string;
  /** Why an align run has no curve ("Loss curve cancelled."). */
  readonly note?: string;
  /** B's folder relative to the workspace ('' at the top): tells apart runs of same-named files. */
  readonly folder?: string;
  /** The seed of the run's weight matching / merge. */
  readonly seed?: number;
}

export interface BarriersState {
  readonly runs: readonly RunSummary[];
}

export type ToBarriers =
  | { readonly type: 'init'; readonly state: BarriersState }
  | { readonly type: 'update'; readonly state: BarriersState };

export type FromBarriers =
  | ReadyMessage
  | { readonly type: 'openRun'; readonly id: string }
  | { readonly type: 'deleteRun'; readonly id: string }
  | { readonly type: 'clearRuns' };

// ---------------------------------------------------------------- inspector

export interface InspectorTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly offsets?: readonly [number, number];
}

export interface ArchitectureInfo {
  readonly family: string;
  /** Permutation group name → number of units it permutes. */
  readonly perms: Readonly<Record<string, number>>;
  /** log10 of the symmetry group order, Σ log10(n!) over groups. */
  readonly symmetryLog10: number;
  readonly notes?: readonly string[];
  /** Per-block permutations (inside heads): name → number of blocks (each of perms[name] / blocks units). */
  readonly blocks?: Readonly<Record<string, number>>;
  /** The attention layers: heads × head_dim, KV groups, which dimensions permute. */
  readonly attention?: readonly AttentionLayer[];
}

export interface InspectorState {
  readonly path: string;
  readonly format: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: readonly InspectorTensor[];
  readonly totalParams: number;
  readonly totalBytes: number;
  readonly architecture?: ArchitectureInfo;
  /** Set when the file could not be read; the view shows it instead of the table. */
  readonly error?: string;
}

export type ToInspector =
  | { readonly type: 'init'; readonly state: InspectorState }
  | { readonly type: 'stats'; readonly tensor: string; readonly stats: TensorStatsResult }
  /** How far a running computation is: `fraction` of the tensor in [0, 1], `message` in the user's words. */
  | { readonly type: 'statsProgress'; readonly tensor: string; readonly fraction: number; readonly message?: string }
  /** The computation stopped because the user cancelled it. */
  | { readonly type: 'statsCancelled'; readonly tensor: string }
  | { readonly type: 'statsError'; readonly tensor: string; readonly message: string };

export type FromInspector =
  | ReadyMessage
  /** Start statistics of a tensor (ignored while one for the same tensor runs). */
  | { readonly type: 'requestStats'; readonly tensor: string }
  /** Stop the running statistics of a tensor. */
  | { readonly type: 'cancelStats'; readonly tensor: string };

/** Which view a message belongs to (handy for generic host-side helpers). */
export interface ViewMessages {
  alignment: { to: ToAlignment; from: FromAlignment };
  barriers: { to: ToBarriers; from: FromBarriers };
  inspector: { to: ToInspector; from: FromInspector };
}
