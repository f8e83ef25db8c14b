/**
 * The `rebasin` CLI as scripts call it: the built `dist/cli.js` in a child process, its exit
 * codes, its one-line errors naming the file, and its `--json` contract (field names are
 * promised to other tools).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint, writeSafetensors, encodeFromFloat32 } from '../../../src/core/safetensors';
import { permuteMlp, randomMlp, randomPerm, tempDir, writeMlp } from '../helpers/engine-fixtures';
import { interruptCli } from '../helpers/cliInterrupt';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const WIDTHS = [8, 16, 12, 3];

function run(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints exactly one line, got:\n${stdout}`);
  return JSON.parse(lines[0]) as T;
}

describe('rebasin CLI', () => {
  const tmp = tempDir('rebasin-cli-');
  const a = path.join(tmp.dir, 'a.safetensors');
  const b = path.join(tmp.dir, 'b.safetensors');
  const c = path.join(tmp.dir, 'c.safetensors');
  const data = path.join(tmp.dir, 'data.safetensors');
  const perms = [randomPerm(16, 11), randomPerm(12, 12)];

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    const base = randomMlp(WIDTHS, 1);
    await writeMlp(a, base);
    await writeMlp(b, permuteMlp(base, perms));
    await writeMlp(c, randomMlp(WIDTHS, 2));
    // A small evaluation set: x [64, 8] float32, y [64] int64 labels in 0..2.
    const n = 64;
    const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i * 0.37));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
    await writeSafetensors(data, [
      { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
  });
  after(() => tmp.cleanup());

  it('prints usage and exits 2 on bad usage', () => {
    for (const args of [[], ['frobnicate'], ['align', a], ['align', a, b], ['merge', a, b, '--out', 'x', '--lambda', '2'], ['inspect', a, '--no-such-flag']]) {
      const r = run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: rebasin/);
      assert.equal(r.stdout, '');
    }
  });

  it('inspect --json reports the header, totals and the architecture', () => {
    const r = run(['inspect', a, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = json<{ path: string; format: string; tensors: { name: string; dtype: string; shape: number[] }[]; totalParams: number; totalBytes: number; architecture?: { family: string; perms: Record<string, number> } }>(r.stdout);
    assert.equal(out.format, 'safetensors');
    assert.equal(out.tensors.length, 6);
    assert.equal(out.totalParams, 8 * 16 + 16 + 16 * 12 + 12 + 12 * 3 + 3);
    assert.equal(out.totalBytes, out.totalParams * 4);
    assert.equal(out.architecture?.family, 'mlp');
    assert.deepEqual(Object.values(out.architecture?.perms ?? {}).sort((x, y) => x - y), [12, 16]);
  });

  it('inspect fails with one line naming the file for a malformed file', () => {
    const bad = path.join(tmp.dir, 'broken.safetensors');
    fs.writeFileSync(bad, Buffer.from([1, 2, 3]));
    const r = run(['inspect', bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /broken\.safetensors/);
  });

  it('spec prints an editable spec that align accepts back with --spec', () => {
    const r = run(['spec', a]);
    assert.equal(r.code, 0, r.stderr);
    const specFile = path.join(tmp.dir, 'spec.json');
    fs.writeFileSync(specFile, r.stdout);
    const parsed = JSON.parse(r.stdout) as { axes: Record<string, (string | null)[]> };
    assert.deepEqual(parsed.axes['layers.0.weight'].map((p) => p !== null), [true, false]);
    const out = path.join(tmp.dir, 'b.spec-aligned.safetensors');
    const al = run(['align', a, b, '--out', out, '--spec', specFile, '--json']);
    assert.equal(al.code, 0, al.stderr);
  });

  it('align recovers a planted permutation and writes pi(B) equal to A', async () => {
    const out = path.join(tmp.dir, 'b.aligned.safetensors');
    const r = run(['align', a, b, '--out', out, '--seed', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ method: string; seconds: number; iterations: number; objectiveBefore: number; objectiveAfter: number; perms: Record<string, number[]>; out: string; backend: string }>(r.stdout);
    assert.equal(res.method, 'weight');
    assert.equal(res.out, out);
    assert.ok(['tensorflow', 'wasm', 'cpu'].includes(res.backend));
    assert.ok(res.objectiveAfter > res.objectiveBefore);
    const aligned = await openCheckpoint(out);
    const orig = await openCheckpoint(a);
    try {
      for (const t of orig.tensors) assert.deepEqual(await aligned.readFloat32(t.name), await orig.readFloat32(t.name), t.name);
      assert.equal(aligned.metadata['rebasin.align.method'], 'weight');
    } finally {
      await aligned.close();
      await orig.close();
    }
  });

  it('align refuses to write over an input and leaves it untouched', () => {
    const before = fs.readFileSync(b);
    const r = run(['align', a, b, '--out', b]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /b\.safetensors/);
    assert.deepEqual(fs.readFileSync(b), before);
  });

  it('align of incompatible checkpoints names the first differing tensor', async () => {
    const other = path.join(tmp.dir, 'wide.safetensors');
    await writeMlp(other, randomMlp([8, 20, 12, 3], 5));
    const out = path.join(tmp.dir, 'never.safetensors');
    const r = run(['align', a, other, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /layers\.0\.(weight|bias)/);
    assert.equal(fs.existsSync(out), false);
  });

  it('align refuses NaN weights naming the tensor unless --allow-non-finite', async () => {
    const m = randomMlp(WIDTHS, 9);
    m.get('layers.1.weight')!.data[5] = Number.NaN;
    const nan = path.join(tmp.dir, 'nan.safetensors');
    await writeMlp(nan, m);
    const out = path.join(tmp.dir, 'nan-out.safetensors');
    const r = run(['align', a, nan, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /layers\.1\.weight/);
    assert.equal(fs.existsSync(out), false);
    const ok = run(['align', a, nan, '--out', out, '--allow-non-finite', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(fs.existsSync(out));
  });

  it('merge --json writes the merged checkpoint; --no-align gives the plain average', async () => {
    const out = path.join(tmp.dir, 'merged.safetensors');
    const r = run(['merge', a, c, '--out', out, '--lambda', '0.5', '--no-align', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ out: string; inputs: string[]; lambda: number; aligned: boolean; method: string; seconds: number; backend: string }>(r.stdout);
    assert.equal(res.method, 'none');
    assert.equal(res.aligned, false);
    const [ma, mc, mm] = await Promise.all([openCheckpoint(a), openCheckpoint(c), openCheckpoint(out)]);
    try {
      const [xa, xc, xm] = await Promise.all([ma, mc, mm].map((k) => k.readFloat32('layers.2.bias')));
      xm.forEach((v, i) => assert.ok(Math.abs(v - (xa[i] + xc[i]) / 2) < 1e-6));
    } finally {
      await Promise.all([ma, mc, mm].map((k) => k.close()));
    }
    const three = run(['merge', a, b, c, '--out', path.join(tmp.dir, 'merged3.safetensors'), '--json']);
    assert.equal(three.code, 0, three.stderr);
    assert.equal(json<{ method: string }>(three.stdout).method, 'mergemany');
  });

  it('barrier --json reports both paths and barriers on the contract fields', () => {
    const r = run(['barrier', a, c, '--data', data, '--steps', '5', '--json', '--workers', '2']);
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ lambdas: number[]; naive: { loss: number[]; acc: number[] }; aligned: { loss: number[]; acc: number[] }; barrier: { naive: number; aligned: number }; backend: string; seconds: number }>(r.stdout);
    assert.deepEqual(res.lambdas, [0, 0.25, 0.5, 0.75, 1]);
    assert.equal(res.naive.loss.length, 5);
    assert.equal(res.aligned.acc.length, 5);
    assert.ok(res.barrier.naive >= 0 && res.barrier.aligned >= 0);
    // The endpoints are A and B (or pi(B), the same function) on both paths.
    assert.ok(Math.abs(res.naive.loss[0] - res.aligned.loss[0]) < 1e-5);
    assert.ok(Math.abs(res.naive.loss[4] - res.aligned.loss[4]) < 1e-4);
    assert.deepEqual((res as { alignedFrom?: unknown }).alignedFrom, { method: 'weight', source: 'alignment' });
  });

  it('barrier --method activation: the aligned curve is that of the file `align --method activation` wrote; --aligned gives the same numbers without aligning', () => {
    type Res = {
      lambdas: number[];
      naive: { loss: number[]; acc: number[] };
      aligned?: { loss: number[]; acc: number[] };
      align?: { method: string };
      alignedFrom?: { method: string; source: string; checkpoint?: string };
    };
    const written = path.join(tmp.dir, 'c.activation.safetensors');
    const al = run(['align', a, c, '--method', 'activation', '--data', data, '--out', written, '--json']);
    assert.equal(al.code, 0, al.stderr);
    const steps = ['--data', data, '--steps', '5', '--json', '--workers', '2'];
    const aligning = run(['barrier', a, c, '--method', 'activation', ...steps]);
    assert.equal(aligning.code, 0, aligning.stderr);
    const here = json<Res>(aligning.stdout);
    assert.deepEqual(here.alignedFrom, { method: 'activation', source: 'alignment' });
    assert.equal(here.align?.method, 'activation');
    // The plain linear path from A to the written file, with no alignment at all.
    const direct = run(['barrier', a, written, '--no-align', ...steps]);
    assert.equal(direct.code, 0, direct.stderr);
    const file = json<Res>(direct.stdout);
    assert.equal(file.aligned, undefined);
    assert.equal(file.alignedFrom, undefined);
    here.aligned!.loss.forEach((l, i) => assert.ok(Math.abs(l - file.naive.loss[i]) <= 1e-6 * Math.max(1, Math.abs(l)), `loss at λ ${here.lambdas[i]}: ${l} vs ${file.naive.loss[i]}`));
    assert.deepEqual(here.aligned!.acc, file.naive.acc);
    // --aligned evaluates the written file as pi(B): the same numbers, nothing aligned.
    const given = run(['barrier', a, c, '--aligned', written, ...steps]);
    assert.equal(given.code, 0, given.stderr);
    const fromFile = json<Res>(given.stdout);
    assert.equal(fromFile.align, undefined, 'nothing was aligned');
    assert.deepEqual(fromFile.alignedFrom, { method: 'activation', source: 'checkpoint', checkpoint: written });
    assert.deepEqual(fromFile.aligned, file.naive);
    assert.deepEqual(fromFile.naive, here.naive);
    // Contradictory flags are usage errors.
    assert.equal(run(['barrier', a, c, '--aligned', written, '--method', 'weight', ...steps]).code, 2);
    assert.equal(run(['barrier', a, c, '--aligned', written, '--no-align', ...steps]).code, 2);
  });

  it('barrier without --data is a usage error', () => {
    const r = run(['barrier', a, b]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--data/);
  });

  it('Ctrl-C cancels an align and leaves no output or temp file', async () => {
    // A larger pair so the run is still going when the signal arrives.
    const bigA = path.join(tmp.dir, 'big-a.safetensors');
    const bigB = path.join(tmp.dir, 'big-b.safetensors');
    await writeMlp(bigA, randomMlp([784, 1024, 1024, 1024, 10], 21));
    await writeMlp(bigB, randomMlp([784, 1024, 1024, 1024, 10], 22));
    const out = path.join(tmp.dir, 'cancelled.safetensors');
    const r = await interruptCli(cli, ['align', bigA, bigB, '--out', out]);
    assert.ok(r.running, `the align ended before it could be interrupted: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.stoppedInMs < 5000, 'stopped promptly');
    assert.match(r.stderr, /cancelled/);
    assert.deepEqual(fs.readdirSync(tmp.dir).filter((f) => f.startsWith('cancelled') || f.includes('.tmp')), []);
  });
});
