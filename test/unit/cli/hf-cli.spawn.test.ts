/**
 * The command line on Hugging Face folders (docs/cli.md, "Hugging Face folders"): the real bundle
 * (dist/cli.js) aligns and merges folders into folders, `--out X.safetensors` still writes one
 * file, and inspect reads a folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;

const run = runCli;

before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-hf-cli-');
  await cp(hfFixture('llama-tiny-gqa-sharded'), tmp.file('a'), { recursive: true });
  await cp(hfFixture('llama-tiny-gqa-sharded'), tmp.file('b'), { recursive: true });
});
after(() => tmp.remove());

describe('rebasin on Hugging Face folders', () => {
  it('align A/ B/ --out DIR writes a sharded folder and reports it', async () => {
    const out = tmp.file('aligned');
    const r = run(['align', tmp.file('a'), tmp.file('b'), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { out: string; family?: string };
    assert.equal(json.out, out);
    assert.ok(statSync(out).isDirectory());
    const files = await readdir(out);
    assert.equal(files.filter((f) => /^model-\d{5}-of-00010\.safetensors$/.test(f)).length, 10);
    assert.ok(files.includes('model.safetensors.index.json') && files.includes('config.json') && files.includes('tokenizer.json'));
    const inspected = run(['inspect', out, '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal((JSON.parse(inspected.stdout) as { format: string }).format, 'sharded');
  });

  it('merge A/ B/ --out DIR writes a folder; --out X.safetensors one file', () => {
    const dir = tmp.file('merged');
    assert.equal(run(['merge', tmp.file('a'), tmp.file('b'), '--out', dir]).code, 0);
    assert.ok(existsSync(path.join(dir, 'model.safetensors.index.json')));
    const file = tmp.file('merged.safetensors');
    const r = run(['merge', tmp.file('a'), tmp.file('b'), '--out', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(statSync(file).isFile());
  });

  it('refuses an input folder as --out, in one line', () => {
    const r = run(['align', tmp.file('a'), tmp.file('b'), '--out', tmp.file('a')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to write over an input/);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('rebasin:')).length, 1);
  });
});
