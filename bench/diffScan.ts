/**
 * Memory of `rebasin diff` and `rebasin scan` on large sparse checkpoints: two files of one big
 * F32 tensor each (a hole on disk, read as zeros; B differs from A in its small tensor), and the
 * peak resident memory of the whole CLI process (engine worker included, /usr/bin/time's maximum
 * RSS) against the same commands on a small real fixture. Chunked reads should keep the peak flat
 * whatever the size. Run: npm run build && node --import tsx bench/diffScan.ts [GiB per file]
 * (default 4), or `npm run bench -- diffscan`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'safetensors', 'fluxml', 'non_sharded', 'model.safetensors');

/** A safetensors file: `small` (4 F32 values) then `big` (F32, `bytes` of zeros as a hole). */
function writeSparse(file: string, bytes: number, small: readonly number[]): void {
  const elements = Math.floor(bytes / 4);
  const header = JSON.stringify({
    big: { dtype: 'F32', shape: [elements], data_offsets: [16, 16 + elements * 4] },
    small: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
  });
  const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, Buffer.concat([prefix, Buffer.from(padded), Buffer.from(Float32Array.from(small).buffer)]));
    fs.ftruncateSync(fd, 8 + padded.length + 16 + elements * 4);
  } finally {
    fs.closeSync(fd);
  }
}

/** Wall time and peak RSS (MiB) of one CLI run. */
function measure(args: readonly string[]): { seconds: number; peakMiB: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, CLI, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`rebasin ${args.join(' ')} failed: ${r.stderr}`);
  const kb = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1]);
  return { seconds: (performance.now() - t0) / 1000, peakMiB: kb / 1024 };
}

export function benchDiffScan(gib = 4): string[] {
  if (!fs.existsSync(CLI)) throw new Error('dist/cli.js is missing: npm run build first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-diffscan-'));
  try {
    const a = path.join(dir, 'a.safetensors');
    const b = path.join(dir, 'b.safetensors');
    writeSparse(a, gib * 2 ** 30, [1, 2, 3, 4]);
    writeSparse(b, gib * 2 ** 30, [1, 2, 3, 5]);
    const rows: [string, { seconds: number; peakMiB: number }][] = [
      ['diff, small fixture', measure(['diff', FIXTURE, FIXTURE])],
      [`diff, two ${gib} GiB files`, measure(['diff', a, b])],
      ['scan, small fixture', measure(['scan', FIXTURE])],
      [`scan, one ${gib} GiB file`, measure(['scan', a])],
    ];
    return rows.map(([what, m]) => `${what.padEnd(28)} ${m.seconds.toFixed(1).padStart(6)} s  peak RSS ${m.peakMiB.toFixed(0).padStart(5)} MiB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const gib = Number(process.argv[2] ?? 4);
  for (const line of benchDiffScan(gib)) console.log(line);
}
