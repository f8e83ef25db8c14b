/**
 * The command line on PyTorch and Flax checkpoints (docs/cli.md, "Other checkpoint formats"):
 * the real bundle (dist/cli.js) converts, inspects, infers specs and aligns them; outputs are
 * safetensors; mlp_evil.pt is refused in one line and nothing runs.
 * Fixtures: test/fixtures/formats (SOURCES.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../../../src/core/formats';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const FORMATS = path.join(root, 'test', 'fixtures', 'formats');
const fixture = (name: string): string => path.join(FORMATS, name);
let tmp: TmpDir;

function run(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function raw(file: string): Promise<Map<string, Buffer>> {
  const c = await openCheckpoint(file);
  try {
    const out = new Map<string, Buffer>();
    for (const t of c.tensors) out.set(t.name, Buffer.from(await c.readRaw(t.name)));
    return out;
  } finally {
    await c.close();
  }
}

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
  tmp = await makeTmpDir('rebasin-formats-cli-');
});
after(() => tmp.remove());

describe('rebasin on PyTorch and Flax checkpoints', () => {
  it('convert mlp_lightning.ckpt writes the safetensors values bit for bit, and says where the weights were', async () => {
    const out = tmp.file('from-ckpt.safetensors');
    const r = run(['convert', fixture('mlp_lightning.ckpt'), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /6 tensors .* from mlp_lightning\.ckpt \(pytorch, weights at `state_dict`, prefix `model\.` removed\)/);
    const got = await raw(out);
    const want = await raw(fixture('mlp.safetensors'));
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [n, b] of want) assert.ok(got.get(n)!.equals(b), n);
  });

  it('convert checkpoint_100 (Flax, no extension) keeps Flax names and layouts', async () => {
    const out = tmp.file('from-flax.safetensors');
    const r = run(['convert', fixture('flax-ckpt/checkpoint_100'), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { format: string }).format, 'flax');
    const c = await openCheckpoint(out);
    try {
      assert.equal(c.format, 'safetensors');
      assert.deepEqual(c.get('Dense_0/kernel')?.shape, [20, 32]);
      assert.equal(c.metadata.format, 'flax');
    } finally {
      await c.close();
    }
  });

  it('mlp_evil.pt: inspect, convert and align refuse it in one line naming the global; nothing runs, nothing is written', () => {
    const marker = '/tmp/REBASIN_PWNED';
    const existed = existsSync(marker);
    const out = tmp.file('evil.safetensors');
    for (const args of [['inspect', fixture('mlp_evil.pt')], ['convert', fixture('mlp_evil.pt'), '--out', out], ['align', fixture('mlp.pt'), fixture('mlp_evil.pt'), '--out', out]]) {
      const r = run(args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^rebasin: mlp_evil\.pt: refused: the pickle names the global `posix\.system`/);
    }
    assert.ok(!existsSync(out));
    if (!existed) assert.ok(!existsSync(marker), `${marker} was created`);
  });

  it('inspect and spec read a .pt and a Flax file; align a .pt pair writes safetensors', () => {
    const inspected = run(['inspect', fixture('mlp_legacy.pt'), '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    const report = JSON.parse(inspected.stdout) as { format: string; origin: string; architecture: { family: string } };
    assert.equal(report.format, 'pytorch');
    assert.equal(report.origin, 'the top level');
    assert.equal(report.architecture.family, 'mlp');
    const spec = run(['spec', fixture('mlp.msgpack'), '--json']);
    assert.equal(spec.code, 0, spec.stderr);
    assert.deepEqual((JSON.parse(spec.stdout) as { axes: Record<string, unknown> }).axes['Dense_1/kernel'], ['P_Dense_0', 'P_Dense_1']);
    const out = tmp.file('aligned.safetensors');
    const aligned = run(['align', fixture('mlp.pt'), fixture('mlp_bf16.pt'), '--out', out, '--json', '--backend', 'wasm']);
    assert.equal(aligned.code, 0, aligned.stderr);
    assert.equal(run(['inspect', out, '--json']).code, 0);
  });
});
