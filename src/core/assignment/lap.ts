/**
 * Exact dense linear assignment (maximisation) for square n x n float matrices.
 *
 * Jonker & Volgenant (1987), "A shortest augmenting path algorithm for dense and sparse
 * linear assignment problems": column reduction, reduction transfer and two rounds of
 * augmenting row reduction give a partial assignment with feasible duals (on the
 * near-permutation cost matrices of weight matching they assign most rows), then every
 * remaining free row is assigned by a Dijkstra shortest augmenting path over columns,
 * as in Crouse (2016) / scipy's `linear_sum_assignment`.
 *
 * Internally the problem is solved as a minimisation of c' = -c (read on the fly, never
 * copied, so a 4096 x 4096 float32 input costs no extra 128 MB); duals are returned for the
 * maximisation: u_i + v_j >= c_ij on every cell, equality on the chosen cells.
 */

/** Errors of the assignment solver. */
export type AssignmentErrorKind = 'BadShape' | 'NotFinite' | 'Cancelled';

export class AssignmentError extends Error {
  override readonly name = 'AssignmentError';
  constructor(readonly kind: AssignmentErrorKind, message: string) {
    super(message);
  }
}

export interface AssignmentResult {
  /** rowToCol[i] = column assigned to row i (a permutation of 0..n-1). */
  readonly rowToCol: Int32Array;
  /** Row duals of the maximisation: u_i + v_j >= c_ij, equality where j = rowToCol[i]. */
  readonly u: Float64Array;
  /** Column duals of the maximisation. */
  readonly v: Float64Array;
  /** Sum of c[i, rowToCol[i]] in float64. */
  readonly value: number;
}

export type CostMatrix = Float32Array | Float64Array;

function checkShape(cost: CostMatrix, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new AssignmentError('BadShape', `linear assignment: size ${n} is not a non-negative integer`);
  }
  if (cost.length !== n * n) {
    throw new AssignmentError('BadShape', `linear assignment: cost has ${cost.length} entries, expected ${n}x${n} = ${n * n}`);
  }
}

/** Throws NotFinite naming the first NaN or infinite cell (called once one is known to exist). */
function rejectNonFinite(cost: CostMatrix, n: number): never {
  for (let k = 0; k < cost.length; k++) {
    const x = cost[k];
    if (!Number.isFinite(x)) {
      throw new AssignmentError('NotFinite', `linear assignment: cost[${Math.floor(k / n)}, ${k % n}] is ${x}; costs must be finite`);
    }
  }
  throw new AssignmentError('NotFinite', 'linear assignment: costs must be finite');
}

/**
 * Solves max over permutations p of sum_i cost[i*n + p(i)] exactly (up to float64 rounding).
 * `cost` is row-major n x n; it is not modified. Synchronous: for the small solves (heads, tests);
 * a solve that may take seconds goes through `solveAssignmentMaxAsync`.
 */
export function solveAssignmentMax(cost: CostMatrix, n: number): AssignmentResult {
  const steps = solveSteps(cost, n);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/** Where a long solve stands, for a progress line. */
export interface AssignmentProgress {
  /** 'reduction': the first passes over the whole matrix; 'augmenting': one shortest path per free row. */
  readonly phase: 'reduction' | 'augmenting';
  /** Rows assigned so far, of `n`. */
  readonly rowsDone: number;
  readonly n: number;
  /** Seconds left, from the measured rate of the rows augmented so far (see RowRateEstimate). */
  readonly secondsLeft?: number;
}

export interface AsyncSolveOptions {
  /** Checked between slices of work (a few tens of milliseconds each); throws AssignmentError 'Cancelled'. */
  readonly signal?: AbortSignal;
  /** Called between slices, at most every `reportMs`. */
  readonly onProgress?: (p: AssignmentProgress) => void;
  /** Milliseconds clock (default performance.now). */
  readonly clock?: () => number;
  /** Longest stretch of work without giving the event loop a turn (default 50 ms). */
  readonly sliceMs?: number;
  /** Least time between two progress calls (default 1000 ms). */
  readonly reportMs?: number;
}

/**
 * `solveAssignmentMax` that gives the event loop a turn every `sliceMs` of work, so a worker
 * can receive its cancel message and send progress while a wide solve runs: on degenerate
 * (low-rank, tied) costs the augmenting paths are long and n = 30,000 takes far longer than
 * the products that built the matrix. The result is the same as the synchronous solve's.
 */
export async function solveAssignmentMaxAsync(cost: CostMatrix, n: number, opts: AsyncSolveOptions = {}): Promise<AssignmentResult> {
  const clock = opts.clock ?? ((): number => performance.now());
  const sliceMs = opts.sliceMs ?? 50;
  const reportMs = opts.reportMs ?? 1000;
  const estimate = new RowRateEstimate();
  let lastBreak = clock();
  let lastReport = lastBreak;
  const steps = solveSteps(cost, n);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    const now = clock();
    if (s.value.phase === 'augmenting') estimate.observe(s.value.augmented, s.value.toAugment, now);
    if (now - lastBreak < sliceMs) continue;
    if (opts.onProgress && now - lastReport >= reportMs) {
      lastReport = now;
      const secondsLeft = s.value.phase === 'augmenting' ? estimate.secondsLeft() : undefined;
      opts.onProgress({ phase: s.value.phase, rowsDone: s.value.rowsDone, n, ...(secondsLeft === undefined ? {} : { secondsLeft }) });
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (opts.signal?.aborted) throw new AssignmentError('Cancelled', 'linear assignment: cancelled');
    lastBreak = clock();
  }
}

/**
 * Time left of the augmenting phase from its own measured rate. The cost of a row's path grows
 * as rows get assigned (on a low-rank cost the paths run through most assigned columns), so a
 * constant rate would promise far too little: the elapsed time is fitted as t(k) ~ k^e between
 * the points at k/2 and k rows, e clamped to [1, 3], and extrapolated to every row.
 */
export class RowRateEstimate {
  private start: number | undefined;
  /** (rows, ms since start) at each doubling of the rows augmented. */
  private readonly marks: [number, number][] = [];
  private rows = 0;
  private total = 0;
  private elapsed = 0;

  observe(rows: number, total: number, now: number): void {
    if (this.start === undefined) this.start = now;
    this.rows = rows;
    this.total = total;
    this.elapsed = now - this.start;
    const last = this.marks[this.marks.length - 1];
    if (rows > 0 && (!last || rows >= 2 * last[0])) this.marks.push([rows, this.elapsed]);
  }

  /** Undefined until a row is done and a second has passed: early rates mislead. */
  secondsLeft(): number | undefined {
    const { rows, total, elapsed } = this;
    if (rows <= 0 || elapsed < 1000) return undefined;
    if (rows >= total) return 0;
    let exponent = 1;
    const half = [...this.marks].reverse().find(([k, t]) => k <= rows / 2 && t > 0);
    if (half && elapsed > half[1]) exponent = Math.log(elapsed / half[1]) / Math.log(rows / half[0]);
    exponent = Math.min(3, Math.max(1, exponent));
    return ((elapsed * ((total / rows) ** exponent - 1)) / 1000);
  }
}

/** A checkpoint of the solve: where it stands (yielded every few million cells of work). */
interface SolveStep {
  readonly phase: 'reduction' | 'augmenting';
  readonly rowsDone: number;
  /** Free rows augmented so far in the augmenting phase, and how many it has to do. */
  readonly augmented: number;
  readonly toAugment: number;
}

/** Cells of work between two checkpoints: a few milliseconds. */
const CELLS_PER_STEP = 1 << 21;

function* solveSteps(cost: CostMatrix, n: number): Generator<SolveStep, AssignmentResult> {
  checkShape(cost, n);
  const rowToCol = new Int32Array(n).fill(-1);
  const colToRow = new Int32Array(n).fill(-1);
  // v holds the column duals of the minimisation of -cost.
  const v = new Float64Array(n);
  if (n > 0) {
    const free = new Int32Array(n);
    let numFree = yield* initialise(cost, n, v, rowToCol, colToRow, free);
    numFree = yield* augmentingRowReduction(cost, n, v, rowToCol, colToRow, free, numFree);
    numFree = yield* augmentingRowReduction(cost, n, v, rowToCol, colToRow, free, numFree);
    yield* augmentAll(cost, n, v, rowToCol, colToRow, free, numFree);
  }
  // Back to the maximisation: u = -u_min, v = -v_min, with u_min_i = -c[i, x_i] - v_min[x_i].
  const u = new Float64Array(n);
  const vMax = new Float64Array(n);
  let value = 0;
  for (let j = 0; j < n; j++) vMax[j] = -v[j];
  for (let i = 0; i < n; i++) {
    const j = rowToCol[i];
    const c = cost[i * n + j];
    value += c;
    u[i] = c - vMax[j];
  }
  return { rowToCol, u, v: vMax, value };
}

/**
 * Column reduction (computed row-wise, which is cache friendly for row-major input) then
 * reduction transfer. Leaves v feasible: every assigned row sits on a column of minimum
 * reduced cost -c[i,j] - v[j]. Returns the number of free rows, listed in `free`.
 */
function* initialise(
  cost: CostMatrix, n: number, v: Float64Array,
  rowToCol: Int32Array, colToRow: Int32Array, free: Int32Array,
): Generator<SolveStep, number> {
  const rowsPerStep = Math.max(1, Math.floor(CELLS_PER_STEP / n));
  // Column minima of -cost = column maxima of cost; argmax kept as the lowest row index.
  // The same pass checks finiteness: h - h is 0 for finite h and NaN for NaN or +-Infinity.
  const colArg = new Int32Array(n);
  let bad = 0;
  for (let j = 0; j < n; j++) {
    const h = -cost[j];
    v[j] = h;
    bad += h - h;
  }
  for (let i = 1; i < n; i++) {
    bad += lowerColumnMinima(cost, i, n, v, colArg);
    if (i % rowsPerStep === 0) yield { phase: 'reduction', rowsDone: 0, augmented: 0, toAugment: 0 };
  }
  if (bad !== 0) rejectNonFinite(cost, n);
  const matches = new Int32Array(n);
  for (let j = n - 1; j >= 0; j--) {
    const i = colArg[j];
    if (++matches[i] === 1) {
      rowToCol[i] = j;
      colToRow[j] = i;
    } else if (v[j] < v[rowToCol[i]]) {
      // Row i prefers the cheaper column: move it there (JV's tie rule in column reduction).
      const j1 = rowToCol[i];
      rowToCol[i] = j;
      colToRow[j] = i;
      colToRow[j1] = -1;
    }
  }
  let numFree = 0;
  for (let i = 0; i < n; i++) {
    if (matches[i] === 0) {
      free[numFree++] = i;
    } else if (matches[i] === 1) {
      // Reduction transfer: lower the price of the row's column to its second-best slack.
      const j1 = rowToCol[i];
      const min = leastSlackBut(cost, i * n, j1, n, v);
      if (min !== Infinity) v[j1] = -cost[i * n + j1] - min;
    }
    if (i % rowsPerStep === 0) yield { phase: 'reduction', rowsDone: i - numFree, augmented: 0, toAugment: 0 };
  }
  return numFree;
}

/**
 * One round of JV's augmenting row reduction: each free row takes its cheapest column,
 * lowering that column's price to the row's second-best slack and evicting its owner.
 */
function* augmentingRowReduction(
  cost: CostMatrix, n: number, v: Float64Array,
  rowToCol: Int32Array, colToRow: Int32Array, free: Int32Array, prevFree: number,
): Generator<SolveStep, number> {
  const rowsPerStep = Math.max(1, Math.floor(CELLS_PER_STEP / n));
  let scans = 0;
  let k = 0;
  let numFree = 0;
  // Bound the total work: with floats, price decrements can be tiny; the Dijkstra phase
  // finishes whatever is left, so stopping early never costs correctness.
  let budget = 4 * n + 16;
  const best: TwoSmallest = { uMin: 0, uSubMin: 0, j1: 0, j2: -1 };
  while (k < prevFree) {
    const i = free[k++];
    const row = i * n;
    twoSmallest(cost, row, n, v, best);
    const uMin = best.uMin;
    const uSubMin = best.uSubMin;
    let j1 = best.j1;
    const j2 = best.j2;
    let i0 = colToRow[j1];
    const strict = uMin < uSubMin && uSubMin !== Infinity;
    if (strict) {
      v[j1] -= uSubMin - uMin;
    } else if (i0 >= 0 && j2 >= 0) {
      // Tie: take the second-best column instead, so the evicted row is not thrown back.
      j1 = j2;
      i0 = colToRow[j2];
    }
    if (i0 >= 0) rowToCol[i0] = -1;
    rowToCol[i] = j1;
    colToRow[j1] = i;
    if (i0 >= 0) {
      if (strict && --budget > 0) free[--k] = i0;
      else free[numFree++] = i0;
    }
    if (++scans % rowsPerStep === 0) yield { phase: 'reduction', rowsDone: n - (prevFree - k) - numFree, augmented: 0, toAugment: 0 };
  }
  return numFree;
}

/**
 * Assigns every remaining free row by a shortest augmenting path (Dijkstra over columns with
 * reduced costs). Columns are kept in `cols`: [0, low) scanned, [low, up) at the current
 * minimum distance, [up, n) still to reach.
 */
function* augmentAll(
  cost: CostMatrix, n: number, v: Float64Array,
  rowToCol: Int32Array, colToRow: Int32Array, free: Int32Array, numFree: number,
): Generator<SolveStep, void> {
  // Work since the last checkpoint, in cells: one path's search scans up to n columns of n.
  let work = 0;
  const step = (f: number): SolveStep => ({ phase: 'augmenting', rowsDone: n - numFree + f, augmented: f, toAugment: numFree });
  yield step(0); // starts the clock of the rate estimate
  const d = new Float64Array(n);
  const pred = new Int32Array(n);
  const cols = new Int32Array(n);
  for (let f = 0; f < numFree; f++) {
    const freeRow = free[f];
    startSearch(cost, freeRow, n, v, d, pred, cols);
    let low = 0;
    let up = 0;
    let last = 0;
    let min = 0;
    let endOfPath = -1;
    while (endOfPath < 0) {
      if (up === low) {
        // Collect every column at the new minimum distance.
        last = low - 1;
        up = collectMinimum(d, cols, low, n);
        min = d[cols[low]];
        for (let k = low; k < up; k++) {
          if (colToRow[cols[k]] < 0) { endOfPath = cols[k]; break; }
        }
        if (endOfPath >= 0) break;
      }
      work += n - up;
      if (work >= CELLS_PER_STEP) {
        work = 0;
        yield step(f);
      }
      // Scan one column at the minimum: relax through the row that owns it.
      const j1 = cols[low++];
      const i = colToRow[j1];
      const row = i * n;
      const h = -cost[row + j1] - v[j1] - min;
      const relaxed = relaxThroughRow(cost, row, i, h, min, n, v, d, pred, cols, colToRow, up);
      if (relaxed < 0) endOfPath = -relaxed - 1;
      else up = relaxed;
    }
    // Update the prices of the scanned columns.
    for (let k = 0; k <= last; k++) {
      const j = cols[k];
      v[j] += d[j] - min;
    }
    // Augment along the path back to the free row.
    for (;;) {
      const i = pred[endOfPath];
      colToRow[endOfPath] = i;
      const next = rowToCol[i];
      rowToCol[i] = endOfPath;
      if (i === freeRow) break;
      endOfPath = next;
    }
    work += n;
    if (work >= CELLS_PER_STEP) {
      work = 0;
      yield step(f + 1);
    }
  }
}

/*
 * The solver's inner loops, each a plain function: V8 optimises a small function that is called
 * often far sooner than a loop inside a generator (measured at n = 512: the first solves of a
 * fresh thread ran 5-8x slower than later ones with the loops inline). Same arithmetic, same order.
 */

/** Row i's pass of the column minima of -cost (argmin kept as the lowest row); returns the finiteness sum h - h. */
function lowerColumnMinima(cost: CostMatrix, i: number, n: number, v: Float64Array, colArg: Int32Array): number {
  const row = i * n;
  let bad = 0;
  for (let j = 0; j < n; j++) {
    const h = -cost[row + j];
    bad += h - h;
    if (h < v[j]) { v[j] = h; colArg[j] = i; }
  }
  return bad;
}

/** The least reduced cost -c[i, j] - v[j] of the row at `row` over the columns but `skip` (Infinity when none). */
function leastSlackBut(cost: CostMatrix, row: number, skip: number, n: number, v: Float64Array): number {
  let min = Infinity;
  for (let j = 0; j < n; j++) {
    if (j === skip) continue;
    const h = -cost[row + j] - v[j];
    if (h < min) min = h;
  }
  return min;
}

/** A shortest-path search from free row i: distances are its reduced costs, every column unscanned. */
function startSearch(cost: CostMatrix, i: number, n: number, v: Float64Array, d: Float64Array, pred: Int32Array, cols: Int32Array): void {
  const row = i * n;
  for (let j = 0; j < n; j++) {
    d[j] = -cost[row + j] - v[j];
    pred[j] = i;
    cols[j] = j;
  }
}

interface TwoSmallest {
  uMin: number;
  uSubMin: number;
  j1: number;
  j2: number;
}

/** The smallest and second smallest reduced costs -c[i, j] - v[j] of the row at `row`, and their columns. */
function twoSmallest(cost: CostMatrix, row: number, n: number, v: Float64Array, out: TwoSmallest): void {
  let uMin = -cost[row] - v[0];
  let j1 = 0;
  let j2 = -1;
  let uSubMin = Infinity;
  for (let j = 1; j < n; j++) {
    const h = -cost[row + j] - v[j];
    if (h < uSubMin) {
      if (h >= uMin) {
        uSubMin = h;
        j2 = j;
      } else {
        uSubMin = uMin;
        uMin = h;
        j2 = j1;
        j1 = j;
      }
    }
  }
  out.uMin = uMin;
  out.uSubMin = uSubMin;
  out.j1 = j1;
  out.j2 = j2;
}

/**
 * Moves the columns of cols[low, n) at the least distance d to cols[low, up) and returns up
 * (the first column of cols[low..] is taken as the start, as the inline loop did).
 */
function collectMinimum(d: Float64Array, cols: Int32Array, low: number, n: number): number {
  let up = low;
  let min = d[cols[up++]];
  for (let k = up; k < n; k++) {
    const j = cols[k];
    const h = d[j];
    if (h <= min) {
      if (h < min) { up = low; min = h; }
      cols[k] = cols[up];
      cols[up++] = j;
    }
  }
  return up;
}

/**
 * Relaxes the columns cols[up, n) through row i (reduced cost offset h): returns the new `up`,
 * or -(j + 1) when a free column j is reached at the minimum distance (the path's end).
 */
function relaxThroughRow(
  cost: CostMatrix, row: number, i: number, h: number, min: number, n: number, v: Float64Array,
  d: Float64Array, pred: Int32Array, cols: Int32Array, colToRow: Int32Array, up: number,
): number {
  for (let k = up; k < n; k++) {
    const j = cols[k];
    const v2 = -cost[row + j] - v[j] - h;
    if (v2 < d[j]) {
      pred[j] = i;
      if (v2 === min) {
        if (colToRow[j] < 0) return -j - 1;
        cols[k] = cols[up];
        cols[up++] = j;
      }
      d[j] = v2;
    }
  }
  return up;
}

/**
 * Checks a result against the maximisation's dual certificate: rowToCol is a permutation,
 * u_i + v_j >= c_ij - tol everywhere and |u_i + v_j - c_ij| <= tol on chosen cells.
 * Returns null when certified, else a one-line reason.
 */
export function certifyOptimal(cost: CostMatrix, n: number, result: AssignmentResult, tol: number): string | null {
  const { rowToCol, u, v } = result;
  if (rowToCol.length !== n) return `rowToCol has length ${rowToCol.length}, expected ${n}`;
  const seen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = rowToCol[i];
    if (j < 0 || j >= n || seen[j]) return `rowToCol is not a permutation at row ${i}`;
    seen[j] = 1;
  }
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let j = 0; j < n; j++) {
      const slack = u[i] + v[j] - cost[row + j];
      if (slack < -tol) return `dual infeasible at (${i}, ${j}): u+v-c = ${slack}`;
    }
    const s = u[i] + v[rowToCol[i]] - cost[row + rowToCol[i]];
    if (Math.abs(s) > tol) return `chosen cell (${i}, ${rowToCol[i]}) not tight: u+v-c = ${s}`;
  }
  return null;
}
