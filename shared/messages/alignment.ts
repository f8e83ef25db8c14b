/**
 * Messages of the alignment panel: extension → webview (`init`, `update`, `curve`) and
 * webview → extension (`ready`, exports, open a file). webview/protocol.ts takes its types from
 * here. A new field of the panel's state goes into `alignmentStateSchema` (optional unless the
 * extension always sends it); a new message type into `TO_ALIGNMENT` or `fromAlignmentSchema`.
 */
import * as v from 'valibot';
import { typedArrayReviver } from '../float32Json';
import { bool, int, isPermutation, num, obj, str, type Schema } from '../schema/rules';
import { attentionLayersSchema } from '../schema/attention';
import { barrierCurveSchema, groupSummarySchema } from '../schema/results';
import { exportCsvSchema, exportPngSchema, readySchema } from './common';

export const modelRefSchema = obj({
  /** Display name (usually the file name). */
  name: str(),
  path: str(),
});

/** Float32Array, any other typed array, ArrayBuffer, number[] or {$f32: base64} → Float32Array. */
function toFloat32(x: unknown): Float32Array | undefined {
  if (x instanceof Float32Array) return x;
  if (x instanceof ArrayBuffer) return x.byteLength % 4 === 0 ? new Float32Array(x) : undefined;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Float32Array.from(x as unknown as ArrayLike<number>);
  if (Array.isArray(x)) return x.every((e) => typeof e === 'number') ? Float32Array.from(x as number[]) : undefined;
  if (typeof x === 'object' && x !== null && typeof (x as { $f32?: unknown }).$f32 === 'string') {
    try {
      const r = typedArrayReviver('', x);
      return r instanceof Float32Array ? r : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const floats = (): Schema<Float32Array> =>
  v.pipe(
    v.custom<unknown>((x) => toFloat32(x) !== undefined, 'must be a Float32Array, an array of numbers or {$f32: base64}'),
    v.transform((x) => toFloat32(x) as Float32Array),
  );

/**
 * Similarity of A's units (rows) against B's units (columns) for one permutation group,
 * row-major `size × size`. The sender may downsample to at most 1024 per side; `size` is the
 * matrix side actually sent and `originalSize` the group's true size (defaults to `size`).
 * `perm[i]` is the B unit moved to position i (gather indices, length `originalSize`).
 *
 * A per-block permutation (attention heads' inner dims) is sent as `blocks`: only its diagonal
 * blocks, never downsampled (`size` is the group's size, m = size / blocks): `before` and
 * `after` hold `blocks` row-major m × m matrices end to end, block g pairing A's head g with
 * B's head π_outer(g) (before: the dims unpermuted). shared/heatmapBlocks.ts reads them.
 */
export const heatmapDataSchema = v.pipe(
  obj({
    name: str(),
    size: int(1),
    originalSize: v.optional(int(1)),
    blocks: v.optional(int(2)),
    perm: v.array(int(0), 'must be an array of indices'),
    before: floats(),
    after: floats(),
  }),
  v.forward(
    v.partialCheck(
      [['size'], ['originalSize'], ['blocks']],
      (h) => h.blocks === undefined || (h.size % h.blocks === 0 && (h.originalSize ?? h.size) === h.size),
      (issue) => `blocks: size ${(issue.input as { size: number }).size} must be a multiple of it, and not downsampled`,
    ),
    ['blocks'],
  ),
  v.forward(v.partialCheck([['size'], ['originalSize']], (h) => (h.originalSize ?? h.size) >= h.size, 'must be >= size'), ['originalSize']),
  v.forward(
    v.partialCheck(
      [['size'], ['originalSize'], ['perm']],
      (h) => h.perm.length === (h.originalSize ?? h.size) && isPermutation(h.perm),
      (issue) => {
        const h = issue.input as { size: number; originalSize?: number; perm: number[] };
        const n = h.originalSize ?? h.size;
        return h.perm.length !== n ? `has ${h.perm.length} entries, expected ${n}` : 'is not a permutation';
      },
    ),
    ['perm'],
  ),
  v.check(
    (h) => h.before.length === heatmapValues(h) && h.after.length === heatmapValues(h),
    (issue) => issue.input.blocks === undefined
      ? `\`before\` and \`after\` must have size² = ${issue.input.size ** 2} values`
      : `\`before\` and \`after\` must have blocks × (size / blocks)² = ${heatmapValues(issue.input)} values`,
  ),
);

/** Values `before` (and `after`) of a heatmap hold: size², or blocks × (size / blocks)². */
export function heatmapValues(h: { size: number; blocks?: number }): number {
  const b = h.blocks ?? 1;
  return b * Math.floor(h.size / b) ** 2;
}

/**
 * Which data a loss curve was computed on, shown under the chart and in an exported PNG's title:
 * the data file or folder, the split, and how much of it (examples; language models: sequences
 * of `seqLen` tokens and the positions scored).
 */
export const dataProvenanceSchema = obj({
  /** The data file or folder name. */
  name: str(),
  split: v.optional(str()),
  examples: v.optional(int(0)),
  sequences: v.optional(int(0)),
  seqLen: v.optional(int(0)),
  /** Language models: next-token (or masked) positions the loss is averaged over. */
  positions: v.optional(int(0)),
});

/** Weight-space distances ‖A − B‖ (naive) and ‖A − π(B)‖ (aligned). */
export const pathDistanceSchema = obj({ naive: num(), aligned: num() });

/**
 * A picture of an orthogonal map R: |R| reduced by block max to `side` × `side` cells (row-major;
 * rows: B's directions, columns: A's), each the largest |R_ij| of a `block` × `block` block.
 * The engine bounds it (src/core/symmetry/mapPictures.ts: at most 256 per side).
 */
export const mapPictureSchema = v.pipe(
  obj({ side: int(1), block: int(1), values: floats() }),
  v.check((p) => p.values.length === p.side * p.side, (issue) => `\`values\` must have side² = ${issue.input.side ** 2} values`),
);

/**
 * One map of an orthogonal alignment (`--symmetry orthogonal`): its name ("residual stream",
 * "layer 0 · QK · head 1"), its side, how far it is from a permutation (`rowMaxMean`: the mean
 * over rows of the largest |R_ij|; 1 for a permutation), the objective trace(RᵀM) for the
 * identity and for R, and its picture (absent: older runs).
 */
export const orthogonalMapRowSchema = v.pipe(
  obj({ name: str(), size: int(1), rowMaxMean: num(), objectiveBefore: num(), objectiveAfter: num(), picture: v.optional(mapPictureSchema) }),
  v.check((m) => m.picture === undefined || m.picture.side === Math.ceil(m.size / m.picture.block), (issue) => `picture of ${issue.input.name}: side ${issue.input.picture?.side} does not match size ${issue.input.size} in blocks of ${issue.input.picture?.block}`),
);

/** What the panel shows of an orthogonal alignment: its maps, and A' (A with folded norms) written beside the output. */
export const orthogonalStateSchema = obj({
  maps: v.array(orthogonalMapRowSchema, 'must be an array'),
  /** A' as written (absent when nothing was written). */
  referenceFolded: v.optional(modelRefSchema),
  /** B' and A' carry an untied `lm_head` (config.json: tie_word_embeddings false). */
  untiedHead: bool(),
});

export const alignmentStateSchema = obj({
  title: str(),
  a: modelRefSchema,
  b: modelRefSchema,
  out: v.optional(modelRefSchema),
  method: str(),
  backend: str(),
  seconds: num(),
  iterations: num(),
  objectiveBefore: num(),
  objectiveAfter: num(),
  groups: v.array(groupSummarySchema, 'must be an array'),
  heatmaps: v.array(heatmapDataSchema, 'must be an array'),
  /** Why a group has no heatmap, when it is not an old run's ("Compute barrier… keeps no similarity matrices…"). */
  heatmapsNote: v.optional(str()),
  /** Loss/accuracy along the linear path; when absent the distance plot is shown instead. */
  curve: v.optional(barrierCurveSchema),
  /**
   * Why there is no curve although the run has evaluation data ("Loss curve cancelled.",
   * "Computing the loss curve…"); the distance plot is shown under it.
   */
  curveNote: v.optional(str()),
  distance: v.optional(pathDistanceSchema),
  /** The data the curve was computed on (absent: older runs, or no curve). */
  data: v.optional(dataProvenanceSchema),
  /**
   * The attention layers of the run's spec (heads, KV groups, inner permutations): their heatmaps
   * are shown per layer under one "Attention heads" tab instead of one tab per group.
   */
  attention: attentionLayersSchema,
  /** An orthogonal alignment (`--symmetry orthogonal`): its maps and A'. */
  orthogonal: v.optional(orthogonalStateSchema),
});

/** Extension → alignment panel, by `type`. */
export const TO_ALIGNMENT = {
  init: obj({ type: v.literal('init'), state: alignmentStateSchema }),
  update: obj({ type: v.literal('update'), state: alignmentStateSchema }),
  /** The loss curve arrived (or changed, or was given up: `curveNote`) after the heatmaps; only the curve section is redrawn. */
  curve: obj({ type: v.literal('curve'), curve: v.optional(barrierCurveSchema), curveNote: v.optional(str()), data: v.optional(dataProvenanceSchema) }),
} as const;

/** Alignment panel → extension. */
export const fromAlignmentSchema = v.variant('type', [
  readySchema,
  exportCsvSchema,
  exportPngSchema,
  obj({ type: v.literal('openFile'), which: v.picklist(['a', 'b', 'out', 'aFolded']) }),
]);

