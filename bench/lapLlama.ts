/**
 * Linear assignment at Llama sizes (issue 14 point 3): our exact solver (src/core/assignment/lap.ts)
 * against scipy's linear_sum_assignment on the same dense float64 matrices, n = 5632 (TinyLlama's
 * MLP) and 14336 (Llama-3-8B's MLP). The matrix is what weight matching sees: C = X Yᵀ with Y a
 * noisy row-permuted copy of X (k = 32 features). Each solver runs once in its own process, so its
 * peak RSS (getrusage maxrss) includes loading the n² matrix (8 n² bytes: 254 MB at 5632, 1.64 GB
 * at 14336) and nothing else.
 *
 * `npm run bench -- laphuge`; one size: node --import tsx bench/lapLlama.ts 5632
 * Internal: node --import tsx bench/lapLlama.ts --solve FILE N (prints one JSON line).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { solveAssignmentMax } from '../src/core/assignment/lap';
import { mulberry32, shuffleInPlace } from '../src/core/matching/prng';

const K = 32;

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Writes C = X Yᵀ (float64, row-major) to `file` row by row: only X, Y and one row in memory. */
function writeCorrMatrix(file: string, n: number, seed: number): void {
  const r = mulberry32(seed);
  const x = new Float64Array(n * K).map(() => gaussian(r));
  const perm = shuffleInPlace(Array.from({ length: n }, (_, i) => i), r);
  const y = new Float64Array(n * K);
  for (let i = 0; i < n; i++) for (let t = 0; t < K; t++) y[i * K + t] = x[perm[i] * K + t] + 0.5 * gaussian(r);
  const fd = fs.openSync(file, 'w');
  try {
    const row = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < K; t++) s += x[i * K + t] * y[j * K + t];
        row[j] = s;
      }
      fs.writeSync(fd, new Uint8Array(row.buffer));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Child mode: load, solve once, print {ms, value, max_rss_kb}. */
function solveChild(file: string, n: number): void {
  const bytes = fs.readFileSync(file);
  const cost = new Float64Array(bytes.buffer, bytes.byteOffset, n * n);
  const t0 = performance.now();
  const r = solveAssignmentMax(cost, n);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, value: r.value, max_rss_kb: process.resourceUsage().maxRSS }));
}

export function benchLapLlama(sizes: readonly number[] = [5632, 14336]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-lap-llama-'));
  const lines = ['dense float64 linear assignment (maximise) at Llama MLP sizes, one solve per process, C = X Yᵀ (k = 32, Y a noisy permuted X)'];
  lines.push('n       matrix    ours s   ours peak RSS   scipy s   scipy peak RSS   ours/scipy   optimum agrees');
  try {
    for (const n of sizes) {
      const file = path.join(dir, `corr-${n}.f64`);
      writeCorrMatrix(file, n, n);
      const ours = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', __filename, '--solve', file, String(n)], { encoding: 'utf8', maxBuffer: 1 << 20 })) as { ms: number; value: number; max_rss_kb: number };
      let scipy: { cold_ms: number; value: number; max_rss_kb: number } | undefined;
      try {
        scipy = JSON.parse(execFileSync('python3', [path.join(__dirname, 'scipy_lap.py'), '--once', file, String(n)], { encoding: 'utf8' })) as typeof scipy;
      } catch {
        scipy = undefined;
      }
      const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
      const agrees = scipy ? (Math.abs(ours.value - scipy.value) <= 1e-9 * Math.abs(scipy.value) ? 'yes' : `NO (${ours.value} vs ${scipy.value})`) : '-';
      lines.push([
        String(n).padEnd(7), `${((8 * n * n) / 2 ** 20).toFixed(0)} MB`.padStart(8),
        (ours.ms / 1000).toFixed(1).padStart(8), mb(ours.max_rss_kb).padStart(15),
        (scipy ? (scipy.cold_ms / 1000).toFixed(1) : 'no scipy').padStart(9), (scipy ? mb(scipy.max_rss_kb) : '-').padStart(16),
        (scipy ? (ours.ms / scipy.cold_ms).toFixed(2) : '-').padStart(12), `  ${agrees}`,
      ].join(' '));
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--solve') solveChild(args[1], Number(args[2]));
  else for (const l of benchLapLlama(args.length ? args.map(Number) : undefined)) console.log(l);
}
