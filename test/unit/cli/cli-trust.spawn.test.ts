/**
 * The CLI (dist/cli.js) keeping its word: config.json read as transformers reads it (class
 * defaults, said in a warning and in the JSON), `spec` and `align` agreeing on a config's head
 * counts, Hugging Face files named with their folder, flags capped or refused as bad usage (exit
 * 2), and the objective over the permuted tensors with the fixed part apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, truncate, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { permuteMlp, randomMlp, randomPerm, writeMlp } from '../helpers/engine-fixtures';
import { encodeFromFloat32, writeSafetensors } from '../../../src/core/safetensors';

let tmp: TmpDir;

const run = runCli;

/** A copy of the tiny Llama fixture in `name`, its config.json edited by `edit`. */
async function llamaCopy(name: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
  const dir = tmp.file(name);
  await cp(hfFixture('llama-tiny-gqa'), dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  await writeFile(file, JSON.stringify(config));
  return dir;
}

before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-cli-trust-');
  const widths = [8, 16, 12, 3];
  const base = randomMlp(widths, 1);
  await writeMlp(tmp.file('a.safetensors'), base);
  await writeMlp(tmp.file('b.safetensors'), permuteMlp(base, [randomPerm(16, 3), randomPerm(12, 4)]));
  const n = 32;
  const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i * 0.37));
  const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
  await writeSafetensors(tmp.file('data.safetensors'), [
    { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
  ]);
});
after(() => tmp.remove());

describe('the CLI keeps its word', () => {
  it('a Llama config.json without max_position_embeddings aligns with LlamaConfig\'s default, and says so', async () => {
    const drop = (c: Record<string, unknown>): void => { delete c.max_position_embeddings; };
    const a = await llamaCopy('llama-a', drop);
    const b = await llamaCopy('llama-b', drop);
    const r = run(['align', a, b, '--out', tmp.file('llama-aligned'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { configDefaults?: string[]; equivalence?: { ok: boolean } };
    assert.deepEqual(res.configDefaults, [
      'llama-a/config.json: no "max_position_embeddings" = 2048 given: using LlamaConfig\'s default, as transformers does',
      'llama-b/config.json: no "max_position_embeddings" = 2048 given: using LlamaConfig\'s default, as transformers does',
    ]);
    assert.equal(res.equivalence?.ok, true);
    const text = run(['align', a, b, '--out', tmp.file('llama-aligned-2')]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, /^warning: llama-a\/config\.json: no "max_position_embeddings" = 2048 given: using LlamaConfig's default, as transformers does$/m);
  });

  it('spec refuses the head counts align refuses (no num_key_value_heads: LlamaConfig makes it the head count)', async () => {
    const dir = await llamaCopy('llama-no-kv', (c) => { delete c.num_key_value_heads; });
    const spec = run(['spec', dir]);
    const align = run(['align', dir, dir, '--out', tmp.file('no-kv-aligned')]);
    assert.equal(spec.code, 1, spec.stderr);
    assert.equal(align.code, 1, align.stderr);
    const reason = /4 key\/value heads of 16 dimensions do not fit the key width 32/;
    assert.match(spec.stderr, reason);
    assert.match(align.stderr, reason);
    assert.match(align.stderr, /^rebasin: llama-no-kv\/model\.safetensors: /, 'the line names the folder, not only model.safetensors');
  });

  it('a config.json that is not JSON is refused, naming its folder, not ignored', async () => {
    const dir = await llamaCopy('llama-bad-config', () => undefined);
    await writeFile(path.join(dir, 'config.json'), '{"model_type": "llama",');
    const r = run(['spec', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^rebasin: llama-bad-config\/config\.json: config\.json is not valid JSON/);
  });

  it('errors on a Hugging Face file name its folder', async () => {
    const dir = await llamaCopy('llama-broken', () => undefined);
    await truncate(path.join(dir, 'model.safetensors'), 1000);
    const r = run(['align', await llamaCopy('llama-ok', () => undefined), dir, '--out', tmp.file('broken-aligned')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^rebasin: llama-broken\/model\.safetensors: /);
  });

  it('caps --workers by the cores and refuses --steps past the grid\'s limit and non-safe integers as bad usage', () => {
    const files = [tmp.file('a.safetensors'), tmp.file('b.safetensors'), '--data', tmp.file('data.safetensors')];
    const many = run(['barrier', ...files, '--steps', '3', '--workers', '64', '--json']);
    assert.equal(many.code, 0, many.stderr);
    const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    assert.ok((JSON.parse(many.stdout) as { workers: number }).workers <= cores);
    assert.match(many.stderr, /^warning: --workers: 64 workers requested, using \d+: /m);
    const budget = run(['barrier', ...files, '--steps', '3', '--no-align', '--workers', '8', '--memory-budget', '60MB', '--json']);
    assert.equal(budget.code, 0, budget.stderr);
    assert.equal((JSON.parse(budget.stdout) as { workers: number }).workers, 1, 'a 60 MB budget holds one worker');
    for (const args of [['--steps', '100000'], ['--limit', '1e300'], ['--seq-len', '1e300'], ['--workers', '1e300']]) {
      const r = run(['barrier', ...files, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^rebasin: ${args[0]} must be`), r.stderr);
    }
  });

  it('a budget too small for the barrier is refused naming the file, not sent on as an invalid request', () => {
    const r = run(['barrier', tmp.file('a.safetensors'), tmp.file('b.safetensors'), '--data', tmp.file('data.safetensors'), '--steps', '3', '--memory-budget', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^rebasin: b\.safetensors: .*over the memory budget of 1 B/);
  });

  it('the objective line is over the permuted tensors; the fixed part is printed apart', () => {
    const r = run(['align', tmp.file('a.safetensors'), tmp.file('b.safetensors'), '--out', tmp.file('mlp-aligned.safetensors'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { objectiveBefore: number; objectiveAfter: number; objectiveFixed?: number };
    // layers.2.bias has no permuted axis: its <A, B> is the fixed part.
    assert.equal(typeof res.objectiveFixed, 'number');
    assert.ok(res.objectiveAfter > res.objectiveBefore);
    const text = run(['align', tmp.file('a.safetensors'), tmp.file('b.safetensors'), '--out', tmp.file('mlp-aligned-2.safetensors')]);
    assert.match(text.stdout, /^objective sum<A, pi\(B\)> over permuted tensors: /m);
    assert.match(text.stdout, /^ {2}\(tensors no permutation touches add -?[\d.e+-]+, unchanged\)$/m);
  });
});
