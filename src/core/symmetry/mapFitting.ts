/**
 * Fitting the maps of the generalized transformer group (transformerGroup.ts) from
 * cross-correlations M = X_B^T X_A, whatever they were summed from (activations in
 * src/engine/compute/orthogonalMatching.ts, weights in weightMatching.ts): matching B's heads to
 * A's before their per-head maps, the rotary-safe Procrustes of a query/key map, and the summary
 * of a fitted map (how far from a permutation, what it gained).
 */
import { solveAssignmentMax } from '../assignment/lap';
import { procrustes } from '../linalg';

/** How far one orthogonal map is from a permutation: the mean over rows of the largest |R_ij| (1 for a signed permutation). */
export interface OrthogonalMapSummary {
  readonly size: number;
  readonly rowMaxMean: number;
  /**
   * trace(R^T M) for the identity and for the fitted R (M the cross-correlation): what the map gained.
   * For a head (indexed by A's head): before = B's head of the same index unmatched, after = the
   * matched head of B through its map.
   */
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
}

export interface HeadShape {
  readonly heads: number;
  readonly kvHeads: number;
  readonly hd: number;
  readonly perGroup: number;
}

/**
 * A layer's head cross-correlations, B's heads on the rows and A's on the columns: q (query heads,
 * heads x head_dim square), k and v (key/value heads); `o` (query heads), when given, adds to each
 * value/output map what the output projection's rows of the query heads reading it contribute
 * (weight matching: the map N acts on W_V's columns and W_O's rows alike).
 */
export interface HeadCross {
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly o?: Float64Array;
}

export interface MatchedHeads {
  /** New query head h is B's query head heads[h] (group-preserving). */
  readonly heads: number[];
  /** Per A's key/value head j: the summed QK cross-correlation of the matched pair, and VO's. */
  readonly qk: Float64Array[];
  readonly vo: Float64Array[];
  /** The same sums for B's head j with A's head j (no head permutation): the summaries' baseline. */
  readonly qkSame: Float64Array[];
  readonly voSame: Float64Array[];
}

/**
 * Matches B's heads to A's: the value of pairing B's key/value head jb with A's ia is the Procrustes
 * objective (nuclear norm; under rotary positions the per-pair rotation's) of its QK map, over its
 * key and its query heads paired within the group by the same objective per query head, plus that
 * of its VO map; linear assignment picks the pairing.
 */
export function matchHeads(cross: HeadCross, shape: HeadShape, qkFit: (m: Float64Array) => Float64Array): MatchedHeads {
  const { kvHeads, hd, perGroup } = shape;
  const objective = (m: Float64Array, fit: (m: Float64Array) => Float64Array) => procrustesObjective(fit(m), m);
  const vo = (m: Float64Array) => procrustes(m, hd);
  // Query heads within a pair of groups: queryPairs[jb][ia] lists, per A's query head, B's query head.
  const queryPairs: number[][][] = [];
  const value = new Float64Array(kvHeads * kvHeads);
  const sums: { qk: Float64Array; vo: Float64Array }[][] = [];
  for (let jb = 0; jb < kvHeads; jb++) {
    queryPairs.push([]);
    sums.push([]);
    for (let ia = 0; ia < kvHeads; ia++) {
      let qOrder = [0];
      if (perGroup > 1) {
        const c = new Float64Array(perGroup * perGroup);
        for (let x = 0; x < perGroup; x++) {
          for (let y = 0; y < perGroup; y++) {
            const [hb, ha] = [jb * perGroup + x, ia * perGroup + y];
            c[y * perGroup + x] = objective(queryBlock(cross.q, shape, hb, ha), qkFit) + (cross.o ? objective(queryBlock(cross.o, shape, hb, ha), vo) : 0);
          }
        }
        qOrder = Array.from(solveAssignmentMax(c, perGroup).rowToCol);
      }
      const pairs = qOrder.map((x) => jb * perGroup + x);
      const sum = groupSums(cross, shape, jb, ia, pairs);
      queryPairs[jb].push(pairs);
      sums[jb].push(sum);
      value[ia * kvHeads + jb] = objective(sum.qk, qkFit) + objective(sum.vo, vo);
    }
  }
  const kvOrder = kvHeads > 1 ? Array.from(solveAssignmentMax(value, kvHeads).rowToCol) : [0];
  const same = pairedSums(cross, shape, Array.from({ length: shape.heads }, (_, h) => h));
  return {
    heads: kvOrder.flatMap((jb, ia) => queryPairs[jb][ia]),
    qk: kvOrder.map((jb, ia) => sums[jb][ia].qk),
    vo: kvOrder.map((jb, ia) => sums[jb][ia].vo),
    qkSame: same.qk,
    voSame: same.vo,
  };
}

/** Per A's key/value head j, the QK and VO sums of the pairing a head permutation gives (new head h is B's head perm[h]). */
export function pairedSums(cross: HeadCross, shape: HeadShape, perm: readonly number[]): { qk: Float64Array[]; vo: Float64Array[] } {
  const { kvHeads, perGroup } = shape;
  const all = Array.from({ length: kvHeads }, (_, ia) => {
    const pairs = perm.slice(ia * perGroup, (ia + 1) * perGroup);
    return groupSums(cross, shape, Math.floor(pairs[0] / perGroup), ia, pairs);
  });
  return { qk: all.map((s) => s.qk), vo: all.map((s) => s.vo) };
}

/** B's key/value head jb with A's ia, B's query heads `pairs[y]` with A's query head ia * perGroup + y. */
function groupSums(cross: HeadCross, shape: HeadShape, jb: number, ia: number, pairs: readonly number[]): { qk: Float64Array; vo: Float64Array } {
  const { kvHeads, hd, perGroup } = shape;
  const qk = block(cross.k, kvHeads, hd, jb, ia);
  const vo = block(cross.v, kvHeads, hd, jb, ia);
  pairs.forEach((hb, y) => {
    addInto(qk, queryBlock(cross.q, shape, hb, ia * perGroup + y));
    if (cross.o) addInto(vo, queryBlock(cross.o, shape, hb, ia * perGroup + y));
  });
  return { qk, vo };
}

function queryBlock(cross: Float64Array, shape: HeadShape, hb: number, ha: number): Float64Array {
  return block(cross, shape.heads, shape.hd, hb, ha);
}

/** The hd x hd block (B's head hb, A's head ha) of a cross-correlation of `count` heads. */
function block(cross: Float64Array, count: number, hd: number, hb: number, ha: number): Float64Array {
  const width = count * hd;
  const out = new Float64Array(hd * hd);
  for (let i = 0; i < hd; i++) for (let j = 0; j < hd; j++) out[i * hd + j] = cross[(hb * hd + i) * width + ha * hd + j];
  return out;
}

function addInto(into: Float64Array, x: Float64Array): void {
  for (let i = 0; i < x.length; i++) into[i] += x[i];
}

/**
 * The maximiser of trace(R^T M) among maps commuting with rotary positions (rotate-half layout:
 * dimension e pairs with e + n/2): per pair the rotation [[c, s], [-s, c]], whose objective
 * c (M_ee + M_ff) + s (M_ef - M_fe) peaks at the angle atan2(M_ef - M_fe, M_ee + M_ff).
 */
export function rotaryProcrustes(m: Float64Array, n: number): Float64Array {
  const half = n / 2;
  const r = new Float64Array(n * n);
  for (let e = 0; e < half; e++) {
    const f = e + half;
    const angle = Math.atan2(m[e * n + f] - m[f * n + e], m[e * n + e] + m[f * n + f]);
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    r[e * n + e] = c;
    r[e * n + f] = s;
    r[f * n + e] = -s;
    r[f * n + f] = c;
  }
  return r;
}

/** trace(R^T M). */
export function procrustesObjective(r: ArrayLike<number>, m: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < m.length; i++) acc += r[i] * m[i];
  return acc;
}

/** `same`: the cross-correlation the identity faces (for a head: B's head of the same index, unmatched); `m` by default. */
export function mapSummary(r: Float64Array, m: Float64Array, n: number, same: Float64Array = m): OrthogonalMapSummary {
  let rows = 0;
  for (let i = 0; i < n; i++) {
    let top = 0;
    for (let j = 0; j < n; j++) top = Math.max(top, Math.abs(r[i * n + j]));
    rows += top;
  }
  let trace = 0;
  for (let i = 0; i < n; i++) trace += same[i * n + i];
  return { size: n, rowMaxMean: rows / n, objectiveBefore: trace, objectiveAfter: procrustesObjective(r, m) };
}
