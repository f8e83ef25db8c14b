/**
 * `npm run bench -- scale [--preset 100m|1b|tiny]`: issue 14's scale bench. Generates a synthetic
 * Llama pair (bench/scale/generate.ts; cached under bench-output/scale/<preset>), runs
 * `rebasin align A B --out OUT` as a child process and prints its wall time, peak RSS (VmHWM of
 * the child from /proc, polled), bytes read (/proc/<pid>/io: read_bytes from the disk and rchar,
 * page cache included), and whether the known permutation was recovered: the aligned output is
 * compared with A tensor by tensor (bit-exact), reported per symmetry group (residual stream,
 * each layer's MLP, each layer's attention heads).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../../src/core/safetensors';
import { generateLlamaPair, parameterCount, PRESETS } from './generate';

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');

interface ChildFigures {
  readonly seconds: number;
  readonly peakRssBytes?: number;
  readonly readBytes?: number;
  readonly rchar?: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function procField(file: string, key: RegExp): number | undefined {
  try {
    const m = key.exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // the process ended between two polls
  }
}

/** Runs a command, polling /proc/<pid>/status (VmHWM) and /proc/<pid>/io every 200 ms. */
function runMeasured(cmd: string, args: readonly string[]): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak: number | undefined;
    let readBytes: number | undefined;
    let rchar: number | undefined;
    const poll = (): void => {
      const hwm = procField(`/proc/${child.pid}/status`, /VmHWM:\s+(\d+) kB/);
      if (hwm !== undefined) peak = Math.max(peak ?? 0, hwm * 1024);
      readBytes = procField(`/proc/${child.pid}/io`, /read_bytes:\s+(\d+)/) ?? readBytes;
      rchar = procField(`/proc/${child.pid}/io`, /rchar:\s+(\d+)/) ?? rchar;
    };
    const timer = setInterval(poll, 200);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssBytes: peak, readBytes, rchar, code, stdout, stderr });
    });
  });
}

const gib = (b: number | undefined): string => (b === undefined ? 'n/a' : `${(b / 2 ** 30).toFixed(2)} GiB`);

/** Which symmetry group a Llama tensor's exact recovery speaks for. */
function groupOf(name: string): string {
  const m = /^model\.layers\.(\d+)\.(mlp|self_attn)\./.exec(name);
  if (m) return m[2] === 'mlp' ? 'mlp' : 'heads';
  return 'residual';
}

/** Per group, how many tensors of the output equal A's bit for bit. */
async function compareWithA(aIndex: string, outIndex: string): Promise<Map<string, { equal: number; total: number }>> {
  const a = await openCheckpoint(aIndex);
  const o = await openCheckpoint(outIndex);
  try {
    const groups = new Map<string, { equal: number; total: number }>();
    for (const t of a.tensors) {
      const g = groupOf(t.name);
      const entry = groups.get(g) ?? { equal: 0, total: 0 };
      const same = o.get(t.name) !== undefined && Buffer.from(await a.readRaw(t.name)).equals(Buffer.from(await o.readRaw(t.name)));
      groups.set(g, { equal: entry.equal + (same ? 1 : 0), total: entry.total + 1 });
    }
    return groups;
  } finally {
    await a.close();
    await o.close();
  }
}

export async function benchScale(presetName: string): Promise<string[]> {
  if (!(presetName in PRESETS)) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const shape = PRESETS[presetName as keyof typeof PRESETS];
  const lines: string[] = [];
  const dir = path.join(root, 'bench-output', 'scale', presetName);
  const permutationFile = path.join(dir, 'permutation.json');
  if (!fs.existsSync(permutationFile)) {
    fs.rmSync(dir, { recursive: true, force: true });
    const t0 = performance.now();
    await generateLlamaPair({ shape, dir, seed: 0 });
    lines.push(`generated the pair in ${((performance.now() - t0) / 1000).toFixed(1)} s (cached in ${path.relative(root, dir)})`);
  } else {
    lines.push(`pair cached in ${path.relative(root, dir)}`);
  }
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const out = path.join(dir, 'aligned');
  fs.rmSync(out, { recursive: true, force: true });
  const inputBytes = ['a', 'b'].reduce((s, side) => s + fs.readdirSync(path.join(dir, side)).filter((f) => f.endsWith('.safetensors')).reduce((t, f) => t + fs.statSync(path.join(dir, side, f)).size, 0), 0);
  lines.push(`${presetName}: ${shape.layers} layers, hidden ${shape.hidden}, MLP ${shape.intermediate}, ${shape.heads} heads in ${shape.kvHeads} KV groups, vocab ${shape.vocab}: ${(parameterCount(shape) / 1e6).toFixed(1)}M parameters per model, ${gib(inputBytes)} of BF16 shards for the pair`);
  const r = await runMeasured(process.execPath, [cli, 'align', a, b, '--out', out, '--json']);
  if (r.code !== 0) {
    lines.push(`rebasin align FAILED (exit ${r.code}) after ${r.seconds.toFixed(1)} s, peak RSS ${gib(r.peakRssBytes)}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return lines;
  }
  let iterations = '?';
  try {
    const json = JSON.parse(r.stdout) as { iterations?: number; seconds?: number; backend?: string };
    iterations = `${json.iterations} sweeps, engine ${json.seconds?.toFixed(1)} s on ${json.backend}`;
  } catch {
    // keep '?': the figures below do not depend on it
  }
  lines.push(`rebasin align: wall ${r.seconds.toFixed(1)} s (${iterations}); peak RSS ${gib(r.peakRssBytes)} (${r.peakRssBytes ? (r.peakRssBytes / inputBytes).toFixed(2) : '?'} x the inputs); read from disk ${gib(r.readBytes)}, read() total ${gib(r.rchar)}`);
  const groups = await compareWithA(path.join(a, 'model.safetensors.index.json'), path.join(out, 'model.safetensors.index.json'));
  const total = [...groups.values()].reduce((s, g) => ({ equal: s.equal + g.equal, total: s.total + g.total }), { equal: 0, total: 0 });
  lines.push(`recovered exactly (aligned output == A, bit for bit): ${total.equal} of ${total.total} tensors${total.equal === total.total ? ' -- the whole permutation' : ''}`);
  for (const [g, c] of [...groups].sort()) {
    const label = g === 'residual' ? 'residual stream (embeddings, norms, lm_head)' : g === 'mlp' ? 'MLP tensors (gate/up/down)' : 'attention tensors (q/k/v/o: heads and KV groups)';
    lines.push(`  ${label}: ${c.equal} of ${c.total}${c.equal === c.total ? ' recovered' : ''}`);
  }
  return lines;
}
