/**
 * `hf:org/name[@rev]` on the command line (docs/cli.md, "Models in the Hugging Face cache"):
 * the real bundle (dist/cli.js) reads a model from a hub cache built as huggingface_hub builds
 * it (symlinks into blobs/), by ref and by commit, found through HF_HUB_CACHE or HF_HOME, and a
 * model that is not there is one line naming the folder looked in (no network).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { addSnapshot, fakeCommit } from '../helpers/hfCache';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
let tmp: TmpDir;
const v1 = fakeCommit('gpt2-tiny v1');

function run(args: readonly string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const clean = { ...process.env };
  for (const k of ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME']) delete clean[k];
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...clean, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
  tmp = await makeTmpDir('rebasin-hf-cache-cli-');
  addSnapshot(tmp.file('hf-home/hub'), 'org/gpt2-tiny', hfFixture('gpt2-tiny'), fakeCommit('gpt2-tiny main'), ['main']);
  addSnapshot(tmp.file('hf-home/hub'), 'org/gpt2-tiny', hfFixture('gpt2-tiny'), v1, ['v1']);
});
after(() => tmp.remove());

describe('rebasin with hf:org/name from the local cache', () => {
  it('inspects hf:org/name like the folder it was downloaded from', () => {
    const fromFolder = run(['inspect', hfFixture('gpt2-tiny'), '--json'], {});
    const fromCache = run(['inspect', 'hf:org/gpt2-tiny', '--json'], { HF_HUB_CACHE: tmp.file('hf-home/hub') });
    assert.equal(fromCache.code, 0, fromCache.stderr);
    const a = JSON.parse(fromFolder.stdout) as { tensors: unknown[] };
    const b = JSON.parse(fromCache.stdout) as { path: string; tensors: unknown[] };
    assert.deepEqual(b.tensors, a.tensors);
    assert.ok(b.path.includes(path.join('models--org--gpt2-tiny', 'snapshots')), b.path);
  });

  it('aligns one revision onto another, found through HF_HOME, and writes outside the cache', () => {
    const out = tmp.file('aligned.safetensors');
    const r = run(['align', 'hf:org/gpt2-tiny', `hf:org/gpt2-tiny@${v1.slice(0, 10)}`, '--out', out, '--json'], { HF_HOME: tmp.file('hf-home') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { out: string }).out, out);
  });

  it('names the cache folder it looked in when the model is absent, in one line', () => {
    const hub = tmp.file('hf-home/hub');
    const r = run(['inspect', 'hf:org/absent'], { HF_HUB_CACHE: hub });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^rebasin: hf:org\/absent: org\/absent is not in the Hugging Face cache \(looked in /);
    assert.ok(r.stderr.includes(path.join(hub, 'models--org--absent')), r.stderr);
  });
});
