/**
 * Weight-matching benchmark: two 784-512-512-512-10 MLPs (PyTorch-style uniform init), and a
 * model against a noisy permuted copy of itself, aligned with our weightMatching (plain-TS
 * `jsMatMul` unless another `MatMulABt` is passed, e.g. the engine's tfjs one). When python3
 * has scipy, bench/numpy_matching.py runs the same algorithm on the same weights.
 * Run: node --import tsx bench/matching.ts
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DenseTensor, MatMulABt, PermSpec, TensorMap } from '../src/core/checkpoint';
import { jsMatMul } from '../src/core/matching/jsMatMul';
import { applyPermutations, randomPermutations } from '../src/core/matching/permute';
import { mulberry32 } from '../src/core/matching/prng';
import { weightMatching } from '../src/core/matching/weightMatching';

const DEFAULT_WIDTHS = [784, 512, 512, 512, 10];
const WIDTHS = DEFAULT_WIDTHS;

export function mlpSpec(WIDTHS: readonly number[] = DEFAULT_WIDTHS): PermSpec {
  const perms: Record<string, number> = {};
  const axes: Record<string, (string | null)[]> = {};
  for (let l = 0; l < WIDTHS.length - 1; l++) {
    const out = l < WIDTHS.length - 2 ? `P${l}` : null;
    const inp = l > 0 ? `P${l - 1}` : null;
    if (out) perms[out] = WIDTHS[l + 1];
    axes[`layers.${l}.weight`] = [out, inp];
    axes[`layers.${l}.bias`] = [out];
  }
  return { perms, axes };
}

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** PyTorch nn.Linear default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
export function randomMlp(seed: number, WIDTHS: readonly number[] = DEFAULT_WIDTHS): Map<string, DenseTensor> {
  const r = mulberry32(seed);
  const m = new Map<string, DenseTensor>();
  for (let l = 0; l < WIDTHS.length - 1; l++) {
    const [inp, out] = [WIDTHS[l], WIDTHS[l + 1]];
    const bound = 1 / Math.sqrt(inp);
    m.set(`layers.${l}.weight`, { shape: [out, inp], data: new Float32Array(out * inp).map(() => (2 * r() - 1) * bound) });
    m.set(`layers.${l}.bias`, { shape: [out], data: new Float32Array(out).map(() => (2 * r() - 1) * bound) });
  }
  return m;
}

export function noisyPermutedCopy(spec: PermSpec, m: TensorMap, seed: number, noise: number): Map<string, DenseTensor> {
  const r = mulberry32(seed + 1);
  const permuted = applyPermutations(spec, randomPermutations(spec, seed), m);
  for (const [name, t] of permuted) {
    const bound = 1 / Math.sqrt(t.shape.length > 1 ? t.shape[1] : 512);
    permuted.set(name, { shape: t.shape, data: t.data.map((x) => x + noise * bound * gaussian(r)) });
  }
  return permuted;
}

/** Minimal float32-only safetensors writer for the Python baseline. */
export function writeSafetensors(file: string, m: TensorMap): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of m) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  const parts: Buffer[] = [head, Buffer.from(json, 'utf8')];
  for (const t of m.values()) parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  fs.writeFileSync(file, Buffer.concat(parts));
}

export function hasScipy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import scipy.optimize'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function benchMatching(matmul: MatMulABt = jsMatMul, label = 'jsMatMul'): Promise<string[]> {
  const spec = mlpSpec();
  const a = randomMlp(0);
  const cases: [string, Map<string, DenseTensor>][] = [
    ['independent random-init MLPs', randomMlp(1)],
    ['noisy permuted copy (noise 0.5 x init scale)', noisyPermutedCopy(spec, a, 7, 0.5)],
  ];
  const python = hasScipy();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-wm-'));
  const lines = [`weight matching, MLP ${WIDTHS.join('-')}, seed 0, maxIter 100, products by ${label}`];
  try {
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    writeSafetensors(path.join(dir, 'a.safetensors'), a);
    for (const [idx, [name, b]] of cases.entries()) {
      const t0 = performance.now();
      const res = await weightMatching(spec, a, b, { seed: 0, maxIter: 100, matmul });
      const ms = performance.now() - t0;
      const moved = res.groups.map((g) => `${g.name} ${g.moved}/${g.size}`).join(', ');
      lines.push(`${name}: ours ${ms.toFixed(0)} ms, ${res.iterations} sweeps, objective ${res.objectiveBefore.toFixed(3)} -> ${res.objectiveAfter.toFixed(3)} (moved ${moved})`);
      if (python) {
        const bFile = path.join(dir, `b${idx}.safetensors`);
        writeSafetensors(bFile, b);
        const out = execFileSync('python3', [path.join(__dirname, 'numpy_matching.py'), path.join(dir, 'spec.json'), path.join(dir, 'a.safetensors'), bFile, '0', '100'], { encoding: 'utf8' });
        const py = JSON.parse(out) as { ms: number; iterations: number; objective_before: number; objective_after: number };
        lines.push(`${' '.repeat(name.length)}  numpy+scipy ${py.ms.toFixed(0)} ms, ${py.iterations} sweeps, objective ${py.objective_before.toFixed(3)} -> ${py.objective_after.toFixed(3)}; ours/numpy time ${(ms / py.ms).toFixed(2)}`);
      }
    }
    if (!python) lines.push('numpy baseline skipped: python3 with scipy not found');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  benchMatching().then(
    (lines) => { for (const l of lines) console.log(l); },
    (err: unknown) => { console.error(err); process.exitCode = 1; },
  );
}
