/**
 * Linear-assignment benchmark: our exact JV solver against npm `munkres` 2.0.4 and, when
 * python3 has scipy, scipy's `linear_sum_assignment` (bench/scipy_lap.py) on the SAME
 * float32 matrices. Cases: `corr` (cost = A.B^T, B a noisy row-permuted copy of A, both
 * n x 784 Gaussian: what weight matching sees) and `uniform` U[0,1).
 * Run: node --import tsx bench/assignment.ts [maxN]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { solveAssignmentMax } from '../src/core/assignment/lap';
import { matMulABt } from '../src/core/matching/jsMatMul';
import { mulberry32 } from '../src/core/matching/prng';

type MunkresFn = (m: ArrayLike<ArrayLike<number>>) => [number, number][];

const rng = mulberry32;

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function corrMatrix(n: number, r: () => number): Float32Array {
  const k = 784;
  const a = new Float32Array(n * k).map(() => gaussian(r));
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = perm[i]; perm[i] = perm[j]; perm[j] = t;
  }
  const b = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) b[i * k + t] = a[perm[i] * k + t] + gaussian(r);
  return matMulABt(a, b, n, k, n);
}

function uniformMatrix(n: number, r: () => number): Float32Array {
  return new Float32Array(n * n).map(() => r());
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const out = f();
  return [out, performance.now() - t0];
}

function hasScipy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import scipy.optimize'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Row {
  n: number; kind: string; file: string;
  oursCold: number; oursWarm: number; oursValue: number;
  munkres?: number; munkresValue?: number;
}

export async function benchAssignment(sizes: readonly number[] = [256, 512, 1024, 2048, 4096]): Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const munkres = (require('munkres') as { munkres: MunkresFn }).munkres;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-lap-'));
  const rows: Row[] = [];
  const lines: string[] = [];
  const lastMunkres: Record<string, number> = {};
  try {
    for (const n of sizes) {
      for (const kind of ['corr', 'uniform']) {
        const r = rng(n * 31 + kind.length);
        const cost = kind === 'corr' ? corrMatrix(n, r) : uniformMatrix(n, r);
        const file = path.join(dir, `${kind}-${n}.f32`);
        fs.writeFileSync(file, new Uint8Array(cost.buffer, cost.byteOffset, cost.byteLength));
        const [res, cold] = time(() => solveAssignmentMax(cost, n));
        let warm = Infinity;
        for (let rep = 0; rep < (n >= 2048 ? 1 : 3); rep++) warm = Math.min(warm, time(() => solveAssignmentMax(cost, n))[1]);
        const row: Row = { n, kind, file, oursCold: cold, oursWarm: warm, oursValue: res.value };
        // munkres minimises: hand it -cost; skip sizes projected (x8 per doubling) past ~20 s.
        const projected = (lastMunkres[kind] ?? 0) * 8;
        if (projected < 20000) {
          const neg: Float64Array[] = [];
          for (let i = 0; i < n; i++) neg.push(Float64Array.from(cost.subarray(i * n, (i + 1) * n), (x) => -x));
          const [pairs, ms] = time(() => munkres(neg));
          let v = 0;
          for (const [i, j] of pairs) v += cost[i * n + j];
          row.munkres = ms;
          row.munkresValue = v;
          lastMunkres[kind] = ms;
        }
        rows.push(row);
      }
    }
    const scipy = new Map<string, { cold_ms: number; warm_ms: number; value: number }>();
    if (hasScipy()) {
      const args = [path.join(__dirname, 'scipy_lap.py')];
      for (const row of rows) args.push(row.file, String(row.n));
      const out = execFileSync('python3', args, { encoding: 'utf8', maxBuffer: 1 << 20 });
      out.trim().split('\n').forEach((line, idx) => scipy.set(rows[idx].file, JSON.parse(line)));
    } else {
      lines.push('scipy: python3 with scipy not found, baseline skipped');
    }
    lines.push('linear assignment (maximise), ms; cold = first call on the matrix, warm = best later call');
    lines.push('n     case     ours cold  ours warm  scipy warm  munkres   ours/scipy  ours/munkres  optimum agrees');
    const agree = (a: number, b: number | undefined): string =>
      b === undefined ? '-' : Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a)) ? 'yes' : `NO (${a} vs ${b})`;
    for (const row of rows) {
      const s = scipy.get(row.file);
      const ratioS = s ? (row.oursWarm / s.warm_ms).toFixed(2) : '-';
      const ratioM = row.munkres !== undefined ? (row.oursWarm / row.munkres).toFixed(2) : '-';
      lines.push([
        String(row.n).padEnd(5), row.kind.padEnd(8),
        row.oursCold.toFixed(1).padStart(9), row.oursWarm.toFixed(1).padStart(10),
        (s ? s.warm_ms.toFixed(1) : '-').padStart(11),
        (row.munkres !== undefined ? row.munkres.toFixed(1) : 'skipped').padStart(9),
        ratioS.padStart(11), ratioM.padStart(13),
        `  scipy ${agree(row.oursValue, s?.value)}, munkres ${agree(row.oursValue, row.munkresValue)}`,
      ].join(' '));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  const maxN = Number(process.argv[2] ?? 4096);
  benchAssignment([256, 512, 1024, 2048, 4096].filter((n) => n <= maxN)).then(
    (lines) => { for (const l of lines) console.log(l); },
    (err: unknown) => { console.error(err); process.exitCode = 1; },
  );
}
