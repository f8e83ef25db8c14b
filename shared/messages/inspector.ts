/**
 * Messages of the checkpoint inspector. webview/protocol.ts takes its types from here. A new
 * field of the inspector's state goes into `inspectorStateSchema`; a new message type into
 * `TO_INSPECTOR` or `fromInspectorSchema`.
 */
import * as v from 'valibot';
import { int, num, obj, str, strArray } from '../schema/rules';
import { attentionLayersSchema } from '../schema/attention';
import { expertLayersSchema } from '../schema/experts';
import { tensorStatsResultSchema } from '../schema/results';
import { scanResultSchema } from '../schema/diff';
import { readySchema, shortText } from './common';

export const inspectorTensorSchema = obj({
  name: str(),
  dtype: str(),
  shape: v.array(int(0), 'must be an array of integers'),
  offsets: v.optional(v.tuple([int(0), int(0)], 'must be [begin, end]')),
});

export const architectureInfoSchema = obj({
  family: str(),
  /** Permutation group name → number of units it permutes. */
  perms: v.record(v.string(), int(0), 'must be an object'),
  /** log10 of the symmetry group order, Σ log10(n!) over groups. */
  symmetryLog10: num(),
  notes: v.optional(strArray()),
  /** Per-block permutations (inside heads): name → number of blocks (each of perms[name] / blocks units). */
  blocks: v.optional(v.record(v.string(), int(1), 'must be an object')),
  /** The attention layers: heads × head_dim, KV groups, which dimensions permute. */
  attention: attentionLayersSchema,
  /** The mixture-of-experts layers: experts × units per expert, the router's top-k. */
  experts: expertLayersSchema,
});

/**
 * A file's metadata: every key kept, `__proto__` and `constructor` included (keys of a file are
 * data), in an object without a prototype.
 */
const metadataSchema = v.pipe(
  v.custom<Record<string, string>>(
    (x) => typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((s) => typeof s === 'string'),
    'must map keys to strings',
  ),
  v.transform((m) => {
    const out = Object.create(null) as Record<string, string>;
    for (const [k, s] of Object.entries(m)) out[k] = s;
    return out;
  }),
);

export const inspectorStateSchema = obj({
  path: str(),
  format: str(),
  metadata: v.optional(metadataSchema, {}),
  tensors: v.array(inspectorTensorSchema, 'must be an array'),
  totalParams: num(),
  totalBytes: num(),
  architecture: v.optional(architectureInfoSchema),
  /** Set when the file could not be read; the view shows it instead of the table. */
  error: v.optional(str()),
});

/** Extension → inspector, by `type`. */
export const TO_INSPECTOR = {
  init: obj({ type: v.literal('init'), state: inspectorStateSchema }),
  stats: obj({ type: v.literal('stats'), tensor: str(), stats: tensorStatsResultSchema }),
  /** How far a running computation is: `fraction` of the tensor in [0, 1], `message` in the user's words. */
  statsProgress: obj({
    type: v.literal('statsProgress'),
    tensor: str(),
    fraction: v.custom<number>((x) => typeof x === 'number' && x >= 0 && x <= 1, 'must be between 0 and 1'),
    message: v.optional(str()),
    /** "about 40 s left", once the rate is measured. */
    timeLeft: v.optional(str()),
  }),
  /** The computation stopped because the user cancelled it. */
  statsCancelled: obj({ type: v.literal('statsCancelled'), tensor: str() }),
  statsError: obj({ type: v.literal('statsError'), tensor: str(), message: str() }),
  /** "Scan for problems" finished: every tensor's statistics and flags; flagged tensors are marked in the table. */
  scan: obj({ type: v.literal('scan'), scan: scanResultSchema }),
  /** The scan stopped: cancelled by the user, or failed (`message`). */
  scanStopped: obj({ type: v.literal('scanStopped'), message: str() }),
} as const;

/** Inspector → extension. */
export const fromInspectorSchema = v.variant('type', [
  readySchema,
  /** Start statistics of a tensor (ignored while one for the same tensor runs). */
  obj({ type: v.literal('requestStats'), tensor: shortText(10_000) }),
  /** Stop the running statistics of a tensor. */
  obj({ type: v.literal('cancelStats'), tensor: shortText(10_000) }),
  /** Scan every tensor for problems (NaN, Inf, all-zero, constant, extreme), under a cancellable notification. */
  obj({ type: v.literal('scan') }),
]);
