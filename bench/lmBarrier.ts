/**
 * The LM barrier as a user runs it (issue 24): `node dist/cli.js barrier A B --data tokens.npy`
 * on a random 2-layer GPT-2 pair (width 64, 4 heads, 128 positions, the fixtures' vocabulary of
 * 320) and 64 x 128 random tokens: 25 λ (both paths, B aligned by weight matching), and
 * `--repair` on 11 λ; on wasm and on the native backend (bench/native.ts provideNative), one CLI
 * process each with the default pool (one worker per core). With `--previous PATH` a previous
 * build's dist/cli.js runs the same commands in the same rounds (alternating, so a change of
 * load falls on both) and each figure is printed as a ratio to it, with the largest difference
 * of their losses. The load average is printed with every figure (the machine may be shared).
 *
 * Needs `npm run build` first (bench/run.ts does it). Run alone: node --import tsx bench/lmBarrier.ts [PREVIOUS_CLI]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mulberry32 } from '../src/core/matching/prng';
import type { BackendName } from '../src/engine/protocol';
import { writeSafetensors } from './matching';
import { randomGpt2 } from './lm';
import { provideNative, withNative } from './native';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
const SHAPE = { layers: 2, width: 64, heads: 4, positions: 128, vocab: 320, sequences: 64 };

/** An int32 `.npy` [n, t] of random ids below the vocabulary. */
function writeTokens(file: string, seed: number): void {
  const { sequences: n, positions: t, vocab } = SHAPE;
  const r = mulberry32(seed);
  const ids = Int32Array.from({ length: n * t }, () => Math.floor(r() * vocab));
  let header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${n}, ${t}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(ids.buffer)]));
}

function writePair(dir: string): void {
  for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
    fs.mkdirSync(path.join(dir, name));
    writeSafetensors(path.join(dir, name, 'model.safetensors'), randomGpt2(SHAPE.layers, SHAPE.width, SHAPE.vocab, SHAPE.positions, seed));
    const { layers, width, heads, positions, vocab } = SHAPE;
    fs.writeFileSync(path.join(dir, name, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: layers, n_embd: width, n_head: heads, n_positions: positions, vocab_size: vocab }));
  }
  writeTokens(path.join(dir, 'tokens.npy'), 3);
}

interface Run {
  readonly seconds: number;
  readonly losses: number[];
  readonly load: number;
}

/** One `barrier A B --data DATA --json ...` command, wall time of the whole process; the losses of both paths. */
export function timedCliBarrier(cliPath: string, args: readonly string[]): Run {
  const load = os.loadavg()[0];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cliPath, 'barrier', ...args, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cliPath} barrier ${args.join(' ')} failed: ${r.stderr.trim().split('\n').pop()}`);
  const j = JSON.parse(r.stdout) as { naive: { loss: number[] }; aligned?: { loss: number[] } };
  return { seconds, losses: [...j.naive.loss, ...(j.aligned?.loss ?? [])], load };
}

function runBarrier(cliPath: string, dir: string, backend: BackendName, extra: readonly string[]): Run {
  return timedCliBarrier(cliPath, [path.join(dir, 'a'), path.join(dir, 'b'), '--data', path.join(dir, 'tokens.npy'), '--backend', backend, ...extra]);
}

export const maxDiff = (x: readonly number[], y: readonly number[]): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);

export function benchLmBarrier(previousCli?: string): Promise<string[]> {
  return withNative((native) => lmBarrierRows(native, previousCli));
}

async function lmBarrierRows(native: ReturnType<typeof provideNative>, previousCli: string | undefined): Promise<string[]> {
  const backends: BackendName[] = native.ok ? ['wasm', 'tensorflow'] : ['wasm'];
  const { layers, width, positions, vocab, sequences } = SHAPE;
  const lines = [
    `\`rebasin barrier\` of a random GPT-2 pair (${layers} layers, width ${width}, ${positions} positions, vocabulary ${vocab}) on ${sequences} x ${positions} tokens, default pool (${os.availableParallelism()} cores), wall time of the CLI process; ${native.ok ? `native: ${native.how}` : `native unavailable: ${native.why}`}`,
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-lmbarrier-'));
  try {
    writePair(dir);
    for (const [label, extra] of [['25 λ, both paths', ['--steps', '25']], ['--repair, 11 λ, both paths', ['--steps', '11', '--repair']]] as const) {
      for (const backend of backends) {
        const ours = runBarrier(cli, dir, backend, extra);
        let line = `  ${label}, ${backend}: ${ours.seconds.toFixed(1)} s (load ${ours.load.toFixed(1)})`;
        if (previousCli) {
          const prev = runBarrier(path.resolve(previousCli), dir, backend, extra);
          line += `; previous build ${prev.seconds.toFixed(1)} s (load ${prev.load.toFixed(1)}); ratio this/previous ${(ours.seconds / prev.seconds).toFixed(2)}; largest loss difference ${maxDiff(ours.losses, prev.losses).toExponential(1)}`;
        }
        lines.push(line);
      }
    }
    lines.push(`  goal: 25 λ under 20 s on native (issue 24); load average now ${os.loadavg()[0].toFixed(1)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  void benchLmBarrier(process.argv[2]).then((l) => console.log(l.join('\n')));
}
