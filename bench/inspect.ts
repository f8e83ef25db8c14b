/**
 * Inspect benchmark: time to open + summarise a sparse 10 GiB safetensors file (header only)
 * against a small real fixture, and the RSS growth while doing it. Opening must cost the same
 * whatever the file size, since only the 8-byte prefix and the header are read.
 * Run: node --import tsx bench/inspect.ts [runs]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkpointSummary, openCheckpoint } from '../src/core/safetensors';
import { writeSparseCheckpoint } from '../test/unit/helpers/sparseCheckpoint';

const FIXTURE = path.join(__dirname, '..', 'test', 'fixtures', 'safetensors', 'fluxml', 'non_sharded', 'model.safetensors');
async function openAndSummarise(file: string): Promise<number> {
  const start = performance.now();
  const ckpt = await openCheckpoint(file);
  checkpointSummary(ckpt);
  const ms = performance.now() - start;
  await ckpt.close();
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchInspect(runs = 21): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-inspect-'));
  try {
    const big = path.join(dir, 'big.safetensors');
    const bigSize = writeSparseCheckpoint(big);
    const smallSize = fs.statSync(FIXTURE).size;
    await openAndSummarise(FIXTURE); // warm up the code paths once
    const rssBefore = process.memoryUsage().rss;
    const bigTimes: number[] = [];
    const smallTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      bigTimes.push(await openAndSummarise(big));
      smallTimes.push(await openAndSummarise(FIXTURE));
    }
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
    const bigMs = median(bigTimes);
    const smallMs = median(smallTimes);
    return [
      `inspect: open+summary, median of ${runs} runs (header only, no tensor data read)`,
      `  sparse file ${(bigSize / 2 ** 30).toFixed(2)} GiB: ${bigMs.toFixed(2)} ms (max ${Math.max(...bigTimes).toFixed(2)} ms)`,
      `  fixture ${path.basename(FIXTURE)} ${smallSize} B, 36 tensors: ${smallMs.toFixed(2)} ms`,
      `  ratio big/small: ${(bigMs / smallMs).toFixed(2)} for a ${Math.round(bigSize / smallSize).toLocaleString('en-US')}x larger file`,
      `  rss growth over ${2 * runs} opens: ${mb(rssGrowth)} MiB (rss now ${mb(process.memoryUsage().rss)} MiB)`,
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const runs = Number(process.argv[2] ?? 21);
  benchInspect(runs).then(
    (lines) => { for (const l of lines) console.log(l); },
    (err: unknown) => { console.error(err); process.exitCode = 1; },
  );
}
