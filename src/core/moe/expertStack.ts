/**
 * Mixture-of-experts layers (Mixtral's hub naming) seen as one stacked tensor per projection,
 * so that the order of the experts is a permutation of an axis like any other.
 *
 * A Mixtral layer keeps each expert in tensors of its own,
 * `<layer>.block_sparse_moe.experts.E.w1|w3.weight` [I, d] and `...w2.weight` [d, I]: permuting
 * the experts moves tensor *names*, not an axis. Stacked, a layer's experts become
 * `<layer>.block_sparse_moe.experts.*.w1|w3.weight` [E x I, d] (expert e's rows at e x I) and
 * `...experts.*.w2.weight` [d, E x I] (expert e's columns at e x I): the axis of E x I units is a
 * block axis (src/core/blockAxis.ts) whose blocks are the experts and whose inner positions are
 * each expert's hidden units, which is what the spec, weight matching, activation matching and
 * the permutation of raw bytes already handle. The `*` cannot occur in a tensor name a framework
 * writes, so a stacked name is never mistaken for a stored one.
 *
 * `stackExperts` gives a checkpoint's stacked view (read on demand, member by member);
 * `unstackSources` turns stacked output tensors back into B's own names and shapes before
 * anything is written; `expertMember` reads one expert's matrix from either naming.
 */
import type { Checkpoint, DenseTensor, TensorInfo, TensorMap } from '../checkpoint';
import type { TensorSource } from '../safetensors/writer';

/** An expert's projection as stored: group 1 the experts' prefix, 2 the expert, 3 w1 | w2 | w3. */
const MEMBER = /^(.*\.block_sparse_moe\.experts)\.(\d+)\.(w[123])\.weight$/;
/** A stacked projection: group 1 the experts' prefix, 2 w1 | w2 | w3. */
const STACKED = /^(.*\.block_sparse_moe\.experts)\.\*\.(w[123])\.weight$/;

export type ExpertProjection = 'w1' | 'w2' | 'w3';

/** The stacked name of projection `w` of the experts under `experts` (`model.layers.0.block_sparse_moe.experts`). */
export function stackedName(experts: string, w: ExpertProjection): string {
  return `${experts}.*.${w}.weight`;
}

/** The stored name of expert `e`'s projection `w`. */
function memberName(experts: string, e: number, w: ExpertProjection): string {
  return `${experts}.${e}.${w}.weight`;
}

/** `{ experts, w }` of a stacked name, else null. */
export function parseStackedName(name: string): { experts: string; w: ExpertProjection } | null {
  const m = STACKED.exec(name);
  return m ? { experts: m[1], w: m[2] as ExpertProjection } : null;
}

/**
 * The experts' units lie along axis 0 of w1 / w3 ([I, d]) and axis 1 of w2 ([d, I]). As bytes:
 * `rows` rows of `rowBytes`, stacked along rows (axis 0) or side by side within each row (axis 1).
 */
interface Layout {
  readonly axis: 0 | 1;
  readonly rows: number;
  readonly rowBytes: number;
}

function layoutOf(w: ExpertProjection, shape: readonly number[], elementBytes: number): Layout {
  return w === 'w2' ? { axis: 1, rows: shape[0], rowBytes: shape[1] * elementBytes } : { axis: 0, rows: shape[0], rowBytes: shape[1] * elementBytes };
}

/** Members' bytes (each `rows` x `rowBytes`) stacked as the layout says. */
export function stackBytes(members: readonly Uint8Array[], layout: Layout): Uint8Array {
  const { rows, rowBytes } = layout;
  const n = members.length;
  const out = new Uint8Array(n * rows * rowBytes);
  if (layout.axis === 0) {
    members.forEach((m, e) => out.set(m, e * rows * rowBytes));
    return out;
  }
  for (let r = 0; r < rows; r++) {
    for (let e = 0; e < n; e++) out.set(members[e].subarray(r * rowBytes, (r + 1) * rowBytes), (r * n + e) * rowBytes);
  }
  return out;
}

/** Member `e` of `n` taken back out of stacked bytes. */
export function memberBytes(stacked: Uint8Array, e: number, n: number, layout: Layout): Uint8Array {
  const { rows, rowBytes } = layout;
  if (layout.axis === 0) return stacked.slice(e * rows * rowBytes, (e + 1) * rows * rowBytes);
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) out.set(stacked.subarray((r * n + e) * rowBytes, (r * n + e + 1) * rowBytes), r * rowBytes);
  return out;
}

function stackedShape(w: ExpertProjection, member: readonly number[], n: number): number[] {
  return w === 'w2' ? [member[0], n * member[1]] : [n * member[0], member[1]];
}

/** The stacked tensors of each view `stackExperts` made, for `unstackSources`. */
const STACKS = new WeakMap<Checkpoint, ReadonlyMap<string, { readonly group: Group; readonly layout: Layout }>>();

interface Group {
  readonly experts: string;
  readonly w: ExpertProjection;
  /** Members in expert order 0..n-1. */
  readonly members: readonly TensorInfo[];
}

/**
 * Each layer's w1 / w2 / w3 groups that stack: experts numbered 0..n-1 without gaps, 2-d, one
 * shape and one dtype. A group that does not is left as stored (spec inference then names it).
 */
function stackableGroups(tensors: readonly TensorInfo[]): Group[] {
  const byKey = new Map<string, { experts: string; w: ExpertProjection; members: Map<number, TensorInfo> }>();
  for (const t of tensors) {
    const m = MEMBER.exec(t.name);
    if (!m) continue;
    const key = `${m[1]}|${m[3]}`;
    const g = byKey.get(key) ?? { experts: m[1], w: m[3] as ExpertProjection, members: new Map<number, TensorInfo>() };
    byKey.set(key, g);
    g.members.set(Number(m[2]), t);
  }
  const out: Group[] = [];
  for (const g of byKey.values()) {
    const members = Array.from({ length: g.members.size }, (_, e) => g.members.get(e));
    const first = members[0];
    if (!first || first.shape.length !== 2) continue;
    const same = members.every((t) => t && t.dtype === first.dtype && t.shape.length === 2 && t.shape[0] === first.shape[0] && t.shape[1] === first.shape[1]);
    if (same) out.push({ experts: g.experts, w: g.w, members: members as TensorInfo[] });
  }
  return out;
}

/**
 * The checkpoint with each layer's experts stacked (see the file's comment); the checkpoint
 * itself when it has none. Stacked tensors are read member by member when asked for; closing
 * the view closes the checkpoint.
 */
export function stackExperts(ck: Checkpoint): Checkpoint {
  const groups = stackableGroups(ck.tensors);
  if (groups.length === 0) return ck;
  const stacked = new Map<string, { info: TensorInfo; group: Group; layout: Layout }>();
  const hidden = new Set<string>();
  for (const g of groups) {
    const first = g.members[0];
    const n = g.members.length;
    const name = stackedName(g.experts, g.w);
    const byteLength = g.members.reduce((s, t) => s + t.byteLength, 0);
    const info: TensorInfo = { name, dtype: first.dtype, shape: stackedShape(g.w, first.shape, n), byteLength, dataOffsets: [0, byteLength], file: first.file };
    const elementBytes = first.byteLength / (first.shape[0] * first.shape[1]);
    stacked.set(name, { info, group: g, layout: layoutOf(g.w, first.shape, elementBytes) });
    for (const t of g.members) hidden.add(t.name);
  }
  const tensors = [...ck.tensors.filter((t) => !hidden.has(t.name)), ...[...stacked.values()].map((s) => s.info)].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const readRaw = async (name: string): Promise<Uint8Array> => {
    const s = stacked.get(name);
    if (!s) return ck.readRaw(name);
    const parts: Uint8Array[] = [];
    for (const t of s.group.members) parts.push(await ck.readRaw(t.name));
    return stackBytes(parts, s.layout);
  };
  const view: Checkpoint = {
    path: ck.path,
    format: ck.format,
    ...(ck.origin !== undefined ? { origin: ck.origin } : {}),
    metadata: ck.metadata,
    tensors,
    get: (name) => byName.get(name),
    readRaw,
    async readFloat32(name) {
      const s = stacked.get(name);
      if (!s) return ck.readFloat32(name);
      const parts: Uint8Array[] = [];
      for (const t of s.group.members) {
        const f = await ck.readFloat32(t.name);
        parts.push(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
      }
      const bytes = stackBytes(parts, layoutOf(s.group.w, s.group.members[0].shape, 4));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    close: () => ck.close(),
  };
  STACKS.set(view, stacked);
  if (ck.readRawRange) {
    const inner = ck.readRawRange.bind(ck);
    view.readRawRange = async (name, begin, end) => (stacked.has(name) ? (await readRaw(name)).slice(begin, end) : inner(name, begin, end));
  }
  return view;
}

/**
 * Output tensors named as in `view` (a view `stackExperts` made: each stacked projection is split
 * back into its experts' own names and shapes, in place of the stacked one); sources unchanged
 * for any other checkpoint. A stacked tensor is read once, when its first member is read, and
 * released once every member has been read.
 */
export function unstackSources(sources: readonly TensorSource[], view: Checkpoint): TensorSource[] {
  const stacks = STACKS.get(view);
  if (!stacks) return [...sources];
  const out: TensorSource[] = [];
  for (const s of sources) {
    const stack = stacks.get(s.name);
    if (!stack) {
      out.push(s);
      continue;
    }
    const { group, layout } = stack;
    const n = group.members.length;
    let pending: Promise<Uint8Array> | undefined;
    let left = n;
    group.members.forEach((m, e) => {
      out.push({
        name: m.name,
        dtype: m.dtype,
        shape: m.shape,
        byteLength: m.byteLength,
        read: async () => {
          pending ??= s.read();
          const bytes = await pending;
          if (--left === 0) pending = undefined;
          return memberBytes(bytes, e, n, layout);
        },
      });
    });
  }
  return out;
}

/**
 * Expert `e`'s projection `w` as a dense tensor, from the stored name or from a stacked tensor
 * (`n` experts); undefined when neither is there.
 */
export function expertMember(tensors: TensorMap, experts: string, e: number, n: number, w: ExpertProjection): DenseTensor | undefined {
  const own = tensors.get(memberName(experts, e, w));
  if (own) return own;
  const s = tensors.get(stackedName(experts, w));
  if (!s || s.shape.length !== 2) return undefined;
  const [r, c] = s.shape;
  const member = w === 'w2' ? [r, c / n] : [r / n, c];
  if (!Number.isInteger(member[0]) || !Number.isInteger(member[1])) return undefined;
  const bytes = new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength);
  const out = memberBytes(bytes, e, n, layoutOf(w, member, 4));
  return { shape: member, data: new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4) };
}
