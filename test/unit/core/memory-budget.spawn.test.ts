/**
 * Weight matching's memory plan (src/core/memoryPlan.ts) and `--memory-budget`: sizes parse,
 * the plan's figures, a run in the "recompute" mode gives the same answer as the cached one,
 * and a pair whose cost matrix cannot fit is refused quickly, in one line, in bounded memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatBytes } from '../../../shared/bytes';
import { MemoryBudgetError, parseByteSize } from '../../../src/core/memoryBudget';
import { planWeightMatching, PRODUCT_BLOCK_BYTES, OPERAND_COPIES } from '../../../src/core/memoryPlan';
import { jsMatMul } from '../../../src/core/matching/jsMatMul';
import { applyPermutations, invertPermutation, randomPermutations } from '../../../src/core/matching/permute';
import { weightMatching } from '../../../src/core/matching/weightMatching';
import { inferSpec } from '../../../src/core/permspec/infer';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';
import * as sd from '../helpers/stateDicts';

test('byte sizes: decimal and binary units, bare numbers; nonsense is refused', () => {
  assert.equal(parseByteSize('8GB'), 8e9);
  assert.equal(parseByteSize('512MiB'), 512 * 1024 ** 2);
  assert.equal(parseByteSize('1.5 GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseByteSize('4g'), 4 * 1024 ** 3);
  assert.equal(parseByteSize('1000000'), 1e6);
  assert.equal(parseByteSize(' 2 kB '), 2000);
  for (const bad of ['', 'abc', '-1GB', '0', '8 XB', '1e9', 'GB']) assert.equal(parseByteSize(bad), null, bad);
  assert.equal(formatBytes(3.6e9), '3.6 GB');
  assert.equal(formatBytes(512), '512 B');
});

test('the plan counts the cost matrix, the largest occurrence\'s operand copies and two product blocks', () => {
  // 1-H-1 MLP: P acts on layers.0.weight [H, 1] (axis 0), layers.0.bias [H], layers.1.weight [1, H] (axis 1).
  const H = 1000;
  const spec = { perms: { P: H }, axes: { 'layers.0.weight': ['P', null], 'layers.0.bias': ['P'], 'layers.1.weight': [null, 'P'], 'layers.1.bias': [null] } };
  const shapes = new Map<string, readonly number[]>([['layers.0.weight', [H, 1]], ['layers.0.bias', [H]], ['layers.1.weight', [1, H]], ['layers.1.bias', [1]]]);
  const plan = planWeightMatching(spec, shapes, { budget: 1e9, heldBytes: 1000 });
  const cost = 4 * H * H;
  assert.equal(plan.solveBytes, cost + OPERAND_COPIES * 4 * H + 2 * Math.min(cost, PRODUCT_BLOCK_BYTES));
  assert.equal(plan.constantBytes, 0, 'a permutation with no changing contributions holds no constant');
  assert.equal(plan.mode, 'cached');
  assert.equal(plan.cacheBytes, 1e9 - 1000 - plan.solveBytes);
  assert.throws(() => planWeightMatching(spec, shapes, { budget: cost, heldBytes: 1000 }),
    (e: unknown) => e instanceof MemoryBudgetError && e.perm === 'P' && e.bytesNeeded > cost && /`P` \(1000 units\) needs .* over the memory budget of 4\.0 MB/.test(e.message));
});

test('a tight budget drops held constants and the cache: same permutations, recovered exactly', async () => {
  const tensors = sd.llamaStateDict({ layers: 2, dModel: 32, heads: 4, kvHeads: 2, intermediate: 64, vocab: 100, seed: 41 });
  const spec = inferSpec(sd.shapesOf(tensors), { heads: 4, kvHeads: 2 }).spec;
  const a = sd.toTensorMap(tensors);
  const applied = randomPermutations(spec, 9);
  const b = applyPermutations(spec, applied, a);
  let held = 0;
  for (const t of Object.keys(spec.axes)) held += a.get(t)!.data.byteLength + b.get(t)!.data.byteLength;
  const shapes = new Map([...a].map(([k, t]) => [k, t.shape]));
  const roomy = planWeightMatching(spec, shapes, { budget: 1e9, heldBytes: held });
  assert.equal(roomy.mode, 'cached');
  assert.ok(roomy.constantBytes > 0, 'P_residual holds its embedding/projection part');
  // Just enough for one solve: constants recomputed, nothing cached.
  const tight = held + roomy.solveBytes;
  const tightPlan = planWeightMatching(spec, shapes, { budget: tight, heldBytes: held });
  assert.equal(tightPlan.mode, 'recompute');
  assert.equal(tightPlan.cacheBytes, 0);
  const runs = [];
  for (const memoryBudget of [1e9, tight]) runs.push(await weightMatching(spec, a, b, { seed: 2, maxIter: 100, matmul: jsMatMul, memoryBudget }));
  for (const p of Object.keys(spec.perms)) {
    // Head permutations compose by blocks: checked through the tensors below.
    if (p === 'P_residual' || p.endsWith('.mlp')) assert.deepEqual(Array.from(runs[0].perms[p]), Array.from(invertPermutation(applied[p])), p);
    assert.deepEqual(Array.from(runs[1].perms[p]), Array.from(runs[0].perms[p]), p);
  }
  const aligned = applyPermutations(spec, runs[0].perms, b);
  for (const [name, t] of a) assert.deepEqual(aligned.get(name)!.data, t.data, `${name} equals A's`);
  await assert.rejects(weightMatching(spec, a, b, { seed: 2, maxIter: 100, matmul: jsMatMul, memoryBudget: tight - 1 }),
    (e: unknown) => e instanceof MemoryBudgetError);
});

/** Runs the CLI, sampling the child's peak RSS (VmHWM) from /proc until it exits. */
function runMeasured(cli: string, args: readonly string[]): Promise<{ code: number | null; stderr: string; peakKiB: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let peakKiB = 0;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const sample = (): void => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
      } catch { /* exited between samples */ }
    };
    const timer = setInterval(sample, 20);
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      clearTimeout(killer);
      resolve({ code, stderr, peakKiB, seconds: (Date.now() - started) / 1000 });
    });
  });
}

test('CLI: a 1-30000-1 MLP pair over --memory-budget is refused in one line, quickly, in bounded memory', async () => {
  const root = path.join(__dirname, '..', '..', '..');
  const cli = path.join(root, 'dist', 'cli.js');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
  const tmp = tempDir('rebasin-budget-');
  try {
    const a = await writeMlp(path.join(tmp.dir, 'a.safetensors'), randomMlp([1, 30000, 1], 1), 'F16');
    const b = await writeMlp(path.join(tmp.dir, 'b.safetensors'), randomMlp([1, 30000, 1], 2), 'F16');
    assert.ok(fs.statSync(a).size < 200_000, 'a ~180 kB checkpoint');
    const out = path.join(tmp.dir, 'out.safetensors');
    const bad = await runMeasured(cli, ['align', a, b, '--out', out, '--memory-budget', 'lots']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--memory-budget must be a size such as 8GB or 512MiB, got "lots"/);
    for (const command of ['align', 'merge']) {
      const r = await runMeasured(cli, [command, a, b, '--out', out, '--memory-budget', '2GB', '--backend', 'cpu']);
      assert.equal(r.code, 1, r.stderr);
      // stderr carries the progress lines, then the error: one line, the last.
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('rebasin:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(r.stderr.trim().endsWith(lines[0]), r.stderr);
      // 30000 x 30000 float32 = 3.6 GB: named with the permutation and the file.
      assert.match(lines[0], /b\.safetensors.*`P_layers\.0` \(30000 units\) needs 3\.[6-8] GB \(its 30000x30000 cost matrix is 3\.6 GB, the models (?:360 kB|120 kB at a time, read from disk tensor by tensor), the process.s runtime \d[\d.]* MB\).*memory budget of 2\.0 GB/); // align goes out of core (the readers hold one tensor per model); merge holds both models
      assert.ok(r.seconds < 30, `refused after ${r.seconds} s`);
      assert.ok(r.peakKiB < 600 * 1024, `peak RSS ${r.peakKiB} KiB`);
      assert.equal(fs.existsSync(out), false);
      console.log(`[memory-budget] ${command}: refused in ${r.seconds.toFixed(1)} s, peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB: ${lines[0]}`);
    }
  } finally {
    tmp.cleanup();
  }
});
