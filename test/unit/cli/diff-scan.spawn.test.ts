/**
 * `rebasin diff` and `rebasin scan` as scripts call them (the built dist/cli.js): their `--json`
 * contract (docs/cli.md), `diff --align` equal to a diff against the file `align` writes, scan
 * flags on planted tensors, usage errors, and Ctrl-C cancelling a scan of a sparse 10 GiB file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import * as path from 'node:path';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { hfFixture } from '../helpers/hfFixtures';
import { interruptCli } from '../helpers/cliInterrupt';
import type { DiffResult, ScanResult } from '../../../src/engine/protocol';
import { permuteMlp, randomMlp, randomPerm, tempDir, writeMlp } from '../helpers/engine-fixtures';
import { writeSparseCheckpoint } from '../helpers/sparseCheckpoint';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const WIDTHS = [8, 16, 12, 3];

function run(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(r: { code: number | null; stdout: string; stderr: string }): T {
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints exactly one line, got:\n${r.stdout}`);
  return JSON.parse(lines[0]) as T;
}

describe('rebasin diff and scan', () => {
  const tmp = tempDir('rebasin-diff-');
  const a = path.join(tmp.dir, 'a.safetensors');
  const b = path.join(tmp.dir, 'b.safetensors');
  const c = path.join(tmp.dir, 'c.safetensors');
  const planted = path.join(tmp.dir, 'planted.safetensors');

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    const base = randomMlp(WIDTHS, 1);
    await writeMlp(a, base);
    await writeMlp(b, permuteMlp(base, [randomPerm(16, 11), randomPerm(12, 12)]));
    await writeMlp(c, randomMlp(WIDTHS, 2));
    const wave = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    await writeSafetensors(planted, [
      { name: 'bf16.nan', dtype: 'BF16', shape: [16], read: async () => encodeFromFloat32('BF16', wave.map((v, i) => (i === 5 ? Number.NaN : v))) },
      { name: 'f16.inf', dtype: 'F16', shape: [16], read: async () => encodeFromFloat32('F16', wave.map((v, i) => (i === 2 ? Infinity : v))) },
      { name: 'f32.ok', dtype: 'F32', shape: [16], read: async () => encodeFromFloat32('F32', wave) },
      { name: 'f32.zero', dtype: 'F32', shape: [4, 4], read: async () => new Uint8Array(64) },
    ]);
  });
  after(() => tmp.cleanup());

  it('diff --json: per-tensor figures, layers and totals that add up', () => {
    const r = json<DiffResult>(run(['diff', a, c, '--json']));
    assert.equal(r.a, a);
    assert.equal(r.b, c);
    assert.deepEqual(r.tensors.map((t) => t.name), ['layers.0.bias', 'layers.0.weight', 'layers.1.bias', 'layers.1.weight', 'layers.2.bias', 'layers.2.weight']);
    for (const t of r.tensors) {
      for (const k of ['l2', 'relative', 'cosine', 'maxAbs', 'nonFinite'] as const) assert.equal(typeof t[k], 'number', `${t.name}.${k}`);
      assert.equal(t.dtype, 'F32');
    }
    assert.deepEqual(r.layers.map((l) => [l.name, l.tensors]), [['layers.0', 2], ['layers.1', 2], ['layers.2', 2]]);
    const sumSq = r.tensors.reduce((s, t) => s + t.l2 ** 2, 0);
    assert.ok(Math.abs(r.totals.l2 ** 2 - sumSq) < 1e-9 * sumSq);
    assert.deepEqual([r.onlyInA, r.onlyInB, r.mismatches, r.skipped], [[], [], [], []]);
    assert.equal(r.aligned, undefined);
  });

  it('diff --align: a permuted copy is 100% explained by alignment', () => {
    const r = json<DiffResult>(run(['diff', a, b, '--align', '--json']));
    assert.ok(r.totals.relative! > 0.5, `naive relative ${r.totals.relative}`);
    assert.ok(r.aligned);
    assert.equal(r.aligned.method, 'weight');
    assert.equal(r.aligned.totals.l2, 0);
    assert.equal(r.aligned.totals.cosine, 1);
    assert.deepEqual(r.aligned.permutations.map((p) => [p.name, p.size]), [['P_layers.0', 16], ['P_layers.1', 12]]);
    assert.ok(r.aligned.permutations.every((p) => p.moved > 0));
  });

  it('diff --align figures equal a diff against the file `align` writes', () => {
    const out = path.join(tmp.dir, 'c.aligned.safetensors');
    assert.equal(run(['align', a, c, '--out', out]).code, 0);
    const viaFile = json<DiffResult>(run(['diff', a, out, '--json']));
    const aligned = json<DiffResult>(run(['diff', a, c, '--align', '--json'])).aligned!;
    assert.deepEqual(aligned.tensors, viaFile.tensors);
    assert.deepEqual(aligned.layers, viaFile.layers);
    assert.deepEqual(aligned.totals, viaFile.totals);
  });

  it('Hugging Face folders: a Llama (GQA) folder against its sharded copy is all zero; --align equals a diff against the folder `align` writes', async () => {
    const llama = hfFixture('llama-tiny-gqa');
    const same = json<DiffResult>(run(['diff', llama, hfFixture('llama-tiny-gqa-sharded'), '--json']));
    assert.ok(same.tensors.length > 20);
    assert.equal(same.totals.l2, 0);
    assert.deepEqual([same.onlyInA, same.onlyInB, same.mismatches], [[], [], []]);
    // B: the same architecture with other weights (A's plus a fixed wave), so alignment moves heads and units.
    const other = path.join(tmp.dir, 'llama-b');
    await cp(llama, other, { recursive: true });
    const ck = await openCheckpoint(path.join(llama, 'model.safetensors'));
    const tensors = [];
    try {
      for (const t of ck.tensors) {
        const x = (await ck.readFloat32(t.name)).map((v, i) => v + 0.5 * Math.sin(i * 0.7 + t.name.length));
        tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, read: async () => encodeFromFloat32(t.dtype, x) });
      }
      await writeSafetensors(path.join(other, 'model.safetensors'), tensors);
    } finally {
      await ck.close();
    }
    const out = path.join(tmp.dir, 'llama-b-aligned');
    const aligned = run(['align', llama, other, '--out', out]);
    assert.equal(aligned.code, 0, aligned.stderr);
    const viaFolder = json<DiffResult>(run(['diff', llama, out, '--json']));
    const r = json<DiffResult>(run(['diff', llama, other, '--align', '--json']));
    assert.ok(r.aligned);
    assert.ok(r.aligned.permutations.some((p) => p.name.endsWith('.kv_heads') || p.name.endsWith('.heads')), 'head permutations are among the groups');
    assert.ok(r.aligned.permutations.some((p) => p.moved > 0));
    assert.deepEqual(r.aligned.tensors, viaFolder.tensors);
    assert.deepEqual(r.aligned.totals, viaFolder.totals);
    assert.ok(r.aligned.totals.l2 < r.totals.l2, `aligned ${r.aligned.totals.l2} < naive ${r.totals.l2}`);
    const scanned = json<ScanResult>(run(['scan', llama, '--json']));
    assert.equal(scanned.tensors.length, same.tensors.length);
  });

  it('diff --align refuses, in one line, a spec under which π(B) computes another function', async () => {
    // Rows of layer 0 permuted without the matching columns of layer 1: not a symmetry of the network.
    const spec = path.join(tmp.dir, 'broken.spec.json');
    writeFileSync(spec, JSON.stringify({ axes: { 'layers.0.weight': ['P_x', null], 'layers.0.bias': ['P_x'], 'layers.1.weight': [null, null], 'layers.1.bias': [null], 'layers.2.weight': [null, null], 'layers.2.bias': [null] } }));
    const r = run(['diff', a, c, '--align', '--spec', spec, '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^rebasin: c\.safetensors: alignment changed the network's function: .*no aligned figures$/m);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('rebasin:')).length, 1);
  });

  it('diff: usage errors for alignment options without --align and for --symmetry', () => {
    for (const args of [['diff', a, c, '--method', 'weight'], ['diff', a, c, '--spec', 'x.json'], ['diff', a, c, '--align', '--symmetry', 'heads'], ['diff', a, c, '--align', '--symmetry', 'orthogonal'], ['diff', a, c, '--symmetry', 'permutation'], ['diff', a]]) {
      const r = run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: rebasin/);
    }
  });

  it('scan --json: planted NaN (BF16), Inf (F16) and all-zero (F32) tensors are flagged', () => {
    const r = json<ScanResult>(run(['scan', planted, '--json']));
    assert.deepEqual(r.tensors.map((t) => [t.name, t.flags]), [['bf16.nan', ['nan']], ['f16.inf', ['inf']], ['f32.ok', []], ['f32.zero', ['all-zero']]]);
    assert.equal(r.tensors[0].nanCount, 1);
    assert.equal(r.tensors[1].infCount, 1);
    assert.equal(r.tensors[3].zeroCount, 16);
    assert.equal(r.flagged, 3);
    assert.deepEqual(r.rule, { extremeAbs: 1e4, extremeStdRatio: 100 });
    const text = run(['scan', planted]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /3 flagged/);
    assert.match(text.stdout, /f32\.zero .*all-zero/);
  });

  it('Ctrl-C cancels a scan of a sparse 10 GiB file promptly', async () => {
    const big = path.join(tmp.dir, 'sparse.safetensors');
    writeSparseCheckpoint(big);
    const r = await interruptCli(cli, ['scan', big], 300);
    assert.ok(r.running, `the scan ended before it could be interrupted: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.stoppedInMs < 5000, 'stopped promptly');
    assert.match(r.stderr, /cancelled/);
  });
});
