/**
 * Data-set bombs (issue 18): peak resident memory of a process that reads small compressed
 * files declaring huge arrays, each refused from its headers (before any inflation), against
 * a process reading the real MNIST test set. Each case runs in its own child process, so the
 * figure is that reader's peak alone (getrusage max RSS).
 * Run: node --import tsx bench/dataBombs.ts
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset, mnistDataDir } from '../src/core/data';
import { compressedZeros, idxHeader, npyBytes, zipBytes } from '../test/unit/helpers/dataFiles';

/** 50,000,000 images of 4x4 bytes: 800 MB declared, under 1 MB compressed. */
const IMAGES = 50_000_000;

interface ChildResult {
  readonly outcome: string;
  readonly maxRssMiB: number;
  readonly ms: number;
}

/** In the child: read the data set, report the outcome and this process's peak RSS. */
async function child(dataPath: string, budget: number | undefined): Promise<void> {
  const t0 = performance.now();
  let outcome: string;
  try {
    const d = await loadDataset({ path: dataPath }, 'test', budget !== undefined ? { budget } : {});
    outcome = `read ${d.n} examples`;
  } catch (e) {
    outcome = `refused: ${(e as Error).message.replace(path.dirname(dataPath), '…')}`;
  }
  const result: ChildResult = { outcome, maxRssMiB: process.resourceUsage().maxRSS / 1024, ms: performance.now() - t0 };
  process.stdout.write(JSON.stringify(result));
}

function runChild(dataPath: string, budget?: number): ChildResult {
  const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, '--child', dataPath, ...(budget !== undefined ? [String(budget)] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as ChildResult;
}

export async function benchDataBombs(): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-bombs-'));
  try {
    const images = await compressedZeros('gzip', idxHeader([IMAGES, 4, 4]), IMAGES * 16);
    const gzEmpty = path.join(dir, 'gz-empty-labels');
    fs.mkdirSync(gzEmpty);
    fs.writeFileSync(path.join(gzEmpty, 't10k-images-idx3-ubyte.gz'), images);
    fs.writeFileSync(path.join(gzEmpty, 't10k-labels-idx1-ubyte'), new Uint8Array(0));
    const gzBudget = path.join(dir, 'gz-budget');
    fs.mkdirSync(gzBudget);
    fs.writeFileSync(path.join(gzBudget, 't10k-images-idx3-ubyte.gz'), images);
    fs.writeFileSync(path.join(gzBudget, 't10k-labels-idx1-ubyte.gz'), await compressedZeros('gzip', idxHeader([IMAGES]), IMAGES));
    const xHead = npyBytes('|u1', [IMAGES, 4, 4], new Uint8Array(0));
    const x = await compressedZeros('deflate-raw', xHead, IMAGES * 16);
    const y = npyBytes('|i8', [5], new Uint8Array(40));
    const npz = path.join(dir, 'bad-labels.npz');
    fs.writeFileSync(npz, zipBytes([{ name: 'x.npy', stored: x, method: 8, size: xHead.length + IMAGES * 16 }, { name: 'y.npy', stored: y, method: 0, size: y.length }]));

    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const cases: [string, string, number | undefined][] = [
      [`real MNIST test set (baseline)`, mnistDataDir(), undefined],
      [`IDX .gz of ${mib(images.length)} declaring ${IMAGES.toLocaleString('en-US')} 4x4 images, 0-byte labels`, gzEmpty, undefined],
      [`the same images with matching labels, --memory-budget 1 GiB`, gzBudget, 2 ** 30],
      [`.npz of ${mib(fs.statSync(npz).size)} (deflated x of 800 MB), 5 labels`, npz, undefined],
    ];
    const lines: string[] = [];
    let baseline = 0;
    for (const [label, p, budget] of cases) {
      const r = runChild(p, budget);
      if (baseline === 0) baseline = r.maxRssMiB;
      lines.push(`${label}: peak RSS ${r.maxRssMiB.toFixed(0)} MiB (${(r.maxRssMiB / baseline).toFixed(2)}x baseline), ${r.ms.toFixed(0)} ms`);
      lines.push(`  ${r.outcome.slice(0, 200)}`);
    }
    return lines;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') void child(args[1], args[2] !== undefined ? Number(args[2]) : undefined);
  else void benchDataBombs().then((lines) => lines.forEach((l) => console.log(l)));
}
