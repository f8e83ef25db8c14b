/**
 * `npm run bench`: every benchmark, each printing its figures as ratios against a baseline
 * measured in the same run (scipy / munkres / numpy / plain JS / one worker / a small file).
 * `npm run bench -- inspect lap` runs only the named sections; `npm run bench -- scale --preset 1b`
 * passes a flag to a section (align, pool and lm: `--previous PATH` also times a previous build's dist/cli.js; diffscan and procrustes are on request too, being minutes long; procrustes: `--max-d 4096`; scale: `--preset tiny|100m|1b|7b` (default 100m), `--dir DIR`, `--backend wasm|tensorflow|both`, `--memory-budget SIZE`; lmtable:
 * `--only gpt2,llama,bert,vit`, `--dir DIR`; scale and lmtable are not part of the default run, being minutes long).
 */
import { benchAlignCli } from './alignCli';
import { benchAssignment } from './assignment';
import { benchBarrier } from './barrier';
import { benchBarrierPool } from './barrierPool';
import { benchDataBombs } from './dataBombs';
import { benchDiffScan } from './diffScan';
import { benchInspect } from './inspect';
import { benchLm } from './lm';
import { benchLmBarrier } from './lmBarrier';
import { benchLmTable } from './lmtable/lmtable';
import { benchMatching } from './matching';
import { benchMatmul } from './matmul';
import { benchNative } from './native';
import { benchProcrustes } from './procrustes';
import { benchLapLlama } from './lapLlama';
import { benchScale } from './scale/scale';
import { initBackend } from '../src/engine/backend';
import { tfMatMul } from '../src/engine/tfMatMul';

/** `--name value` flags given after the section names. */
function flags(argv: readonly string[]): { names: string[]; values: Map<string, string> } {
  const names: string[] = [];
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) values.set(argv[i].slice(2), argv[++i] ?? '');
    else names.push(argv[i]);
  }
  return { names, values };
}
const argv = flags(process.argv.slice(2));

/** Sections only run when named (too long for the default run). */
const ON_REQUEST = new Set(['scale', 'laphuge', 'diffscan', 'procrustes', 'lmtable']);

const SECTIONS: Record<string, { title: string; run: () => Promise<string[]> }> = {
  inspect: { title: 'inspect: 10 GB sparse file vs a small file', run: () => benchInspect() },
  lap: { title: 'linear assignment vs scipy and munkres', run: () => benchAssignment() },
  bombs: { title: 'data-set bombs (small compressed files declaring 800 MB) refused from their headers: peak RSS vs reading MNIST', run: () => benchDataBombs() },
  matmul: { title: 'cost-matrix products per backend vs plain JS', run: () => benchMatmul() },
  matching: {
    title: 'weight matching in-process (plain JS and tfjs products) vs numpy+scipy',
    run: async () => [...(await benchMatching()), ...(await initBackend('auto').then((b) => benchMatching(tfMatMul, `tfjs ${b}`)))],
  },
  align: { title: 'end-to-end `rebasin align` vs numpy+scipy; peak memory of a large alignment', run: () => benchAlignCli({ previousCli: argv.values.get('previous') }) },
  pool: { title: 'barrier curve over the worker pool vs one worker', run: () => benchBarrierPool(argv.values.get('previous')) },
  barrier: { title: 'barrier curve of trained MLPs in one thread (training included)', run: () => benchBarrier(true) },
  lm: {
    title: 'LM evaluation (GPT-2 shape): tokens/s and tfjs peak memory against the batch plan; the LM barrier end to end (wasm and native)',
    run: async () => [...(await benchLm()), ...(await benchLmBarrier(argv.values.get('previous')))],
  },
  diffscan: { title: '`rebasin diff` and `scan` on sparse 4 GiB files vs a small file: peak RSS of the CLI process', run: async () => benchDiffScan() },
  procrustes: {
    title: 'orthogonal Procrustes (eigen path) vs numpy SVD and the Jacobi reference, d = 64 .. 2048 (`--max-d 4096` for more)',
    run: () => benchProcrustes(Number(argv.values.get('max-d') ?? 2048)),
  },
  lmtable: {
    title: 'issue 21 comparison table: trained GPT-2 / Llama-GQA / BERT / ViT pairs, naive / weight / activation / ste x permutation / orthogonal, +- REPAIR (the CLI per cell)',
    run: () => benchLmTable({ only: argv.values.get('only'), dir: argv.values.get('dir') }),
  },
  laphuge: { title: 'linear assignment at Llama MLP sizes (n = 5632, 14336; dense float64) vs scipy: time and peak memory', run: async () => benchLapLlama() },
  scale: {
    title: '`rebasin align` on a synthetic Llama pair (sharded BF16): wall time, peak RSS, bytes read, exact recovery',
    run: () => benchScale({ preset: argv.values.get('preset') ?? '100m', dir: argv.values.get('dir'), backend: argv.values.get('backend') as 'wasm' | 'tensorflow' | 'both' | undefined, memoryBudget: argv.values.get('memory-budget') }),
  },
  // Last: it loads the native backend in this process (other sections measure what `auto` picks).
  native: { title: 'wasm vs native tensorflow side by side (products, matching, align, barrier curve)', run: () => benchNative() },
};

async function main(): Promise<void> {
  const wanted = argv.names;
  const unknown = wanted.filter((w) => !(w in SECTIONS));
  if (unknown.length) {
    console.error(`unknown section(s): ${unknown.join(', ')}; sections: ${Object.keys(SECTIONS).join(', ')}`);
    process.exit(2);
  }
  const names = wanted.length ? wanted : Object.keys(SECTIONS).filter((n) => !ON_REQUEST.has(n));
  for (const name of names) {
    const { title, run } = SECTIONS[name];
    console.log(`\n== ${name}: ${title}`);
    const t0 = performance.now();
    try {
      for (const line of await run()) console.log(line);
    } catch (err) {
      console.log(`FAILED: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    }
    console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

void main();
