/**
 * src/core/hf/cache.ts on a hub cache built as huggingface_hub builds it (blobs + symlinked
 * snapshots + refs): where the cache is, hf:org/name[@rev] resolution by ref and by commit,
 * one-line misses naming the folder looked in, and the listing the pickers show.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, lstatSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HfCacheError, cachedModelOf, hubCacheDir, listCachedModels, parseHfRef, resolveHfRef } from '../../../../src/core/hf/cache';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { addSnapshot, fakeCommit } from '../../helpers/hfCache';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
let hub: string;
const main = fakeCommit('gpt2 main');
const old = fakeCommit('gpt2 old');
const sharded = fakeCommit('llama sharded');
const pytorch = fakeCommit('pytorch only');

before(async () => {
  tmp = await makeTmpDir('rebasin-hf-cache-');
  hub = tmp.file('hub');
  addSnapshot(hub, 'org/gpt2-tiny', hfFixture('gpt2-tiny'), main, ['main']);
  addSnapshot(hub, 'org/gpt2-tiny', hfFixture('gpt2-tiny'), old, ['v1', 'pr/3']);
  addSnapshot(hub, 'meta/llama-sharded', hfFixture('llama-tiny-gqa-sharded'), sharded, ['main']);
  // A repository whose only snapshot holds no safetensors (a tokenizer-only download).
  const tokOnly = tmp.file('tok');
  mkdirSync(tokOnly);
  addSnapshot(hub, 'org/tokenizer-only', tokOnly, fakeCommit('tok'), ['main']);
  // An older upload with PyTorch weights only.
  mkdirSync(tmp.file('pt'));
  copyFileSync(path.join(__dirname, '..', '..', '..', 'fixtures', 'formats', 'gpt2-tiny-pytorch_model.bin'), tmp.file('pt/pytorch_model.bin'));
  addSnapshot(hub, 'old/gpt2-pt', tmp.file('pt'), pytorch, ['main']);
});
after(() => tmp.remove());

describe('hubCacheDir', () => {
  it('follows huggingface_hub: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME, else ~/.cache', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/x/hub', HF_HOME: '/y' }, '/home/u'), '/x/hub');
    assert.equal(hubCacheDir({ HF_HOME: '/y' }, '/home/u'), '/y/hub');
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/c' }, '/home/u'), '/c/huggingface/hub');
    assert.equal(hubCacheDir({}, '/home/u'), '/home/u/.cache/huggingface/hub');
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '', HF_HOME: '/y' }, '/home/u'), '/y/hub', 'an empty variable counts as unset');
  });
});

describe('parseHfRef', () => {
  it('reads org/name, a bare name, ref names with slashes and commit hashes', () => {
    assert.deepEqual(parseHfRef('hf:org/name'), { repoId: 'org/name' });
    assert.deepEqual(parseHfRef('hf:gpt2'), { repoId: 'gpt2' });
    assert.deepEqual(parseHfRef('hf:org/name@pr/3'), { repoId: 'org/name', revision: 'pr/3' });
    assert.deepEqual(parseHfRef(`hf:org/name@${main}`), { repoId: 'org/name', revision: main });
  });
  it('refuses paths that would leave the cache, in one line', () => {
    for (const bad of ['hf:', 'hf:../etc', 'hf:org/../x', 'hf:org/name@../../x', 'hf:/abs', 'hf:a/b/c', 'hf:org/name@']) {
      assert.throws(() => parseHfRef(bad), (e: Error) => e instanceof HfCacheError && !e.message.includes('\n') && e.message.includes('expected hf:org/name'), bad);
    }
  });
});

describe('resolveHfRef', () => {
  it('resolves refs/main to its snapshot, whose weights are symlinks into blobs/', async () => {
    const r = resolveHfRef('hf:org/gpt2-tiny', hub);
    assert.equal(r.commit, main);
    assert.equal(r.folder, path.join(hub, 'models--org--gpt2-tiny', 'snapshots', main));
    const weights = path.join(r.folder, 'model.safetensors');
    assert.ok(lstatSync(weights).isSymbolicLink());
    assert.equal(path.dirname(realpathSync(weights)), realpathSync(path.join(hub, 'models--org--gpt2-tiny', 'blobs')));
    const ckpt = await openCheckpoint(weights);
    try {
      assert.ok(ckpt.tensors.length > 0);
    } finally {
      await ckpt.close();
    }
  });
  it('resolves @rev as a ref name (nested too), a full commit hash or a unique prefix', () => {
    assert.equal(resolveHfRef('hf:org/gpt2-tiny@v1', hub).commit, old);
    assert.equal(resolveHfRef('hf:org/gpt2-tiny@pr/3', hub).commit, old);
    assert.equal(resolveHfRef(`hf:org/gpt2-tiny@${old}`, hub).commit, old);
    assert.equal(resolveHfRef(`hf:org/gpt2-tiny@${main.slice(0, 9)}`, hub).commit, main);
    assert.equal(resolveHfRef('hf:meta/llama-sharded', hub).folder, path.join(hub, 'models--meta--llama-sharded', 'snapshots', sharded));
  });
  it('names the folder it looked in when the model, the ref or the weights are missing', () => {
    const miss = (ref: string, ...parts: string[]): void => missIn(hub, ref, ...parts);
    const missIn = (where: string, ref: string, ...parts: string[]): void =>
      assert.throws(
        () => resolveHfRef(ref, where),
        (e: Error) => e instanceof HfCacheError && !e.message.includes('\n') && parts.every((p) => e.message.includes(p)),
        ref,
      );
    miss('hf:org/absent', 'hf:org/absent', 'not in the Hugging Face cache', path.join(hub, 'models--org--absent'));
    miss('hf:org/gpt2-tiny@v9', 'revision v9', path.join(hub, 'models--org--gpt2-tiny', 'refs'));
    miss(`hf:org/gpt2-tiny@${'0'.repeat(40)}`, path.join(hub, 'models--org--gpt2-tiny', 'snapshots'));
    miss('hf:org/tokenizer-only', 'holds no weights (model.safetensors, pytorch_model.bin');
    missIn(tmp.file('elsewhere'), 'hf:org/gpt2-tiny', path.join(tmp.file('elsewhere'), 'models--org--gpt2-tiny'));
  });
  it('reads a ref file with a trailing newline (written by hand) like one without', () => {
    const other = tmp.file('hub-newline');
    addSnapshot(other, 'org/gpt2-tiny', hfFixture('gpt2-tiny'), main);
    mkdirSync(path.join(other, 'models--org--gpt2-tiny', 'refs'));
    writeFileSync(path.join(other, 'models--org--gpt2-tiny', 'refs', 'main'), `${main}\n`);
    assert.equal(resolveHfRef('hf:org/gpt2-tiny', other).commit, main);
  });
});

describe('listCachedModels', () => {
  it('lists each snapshot with weights, main first, with its CLI name', () => {
    const models = listCachedModels(hub);
    assert.deepEqual(
      models.map((m) => [m.repoId, m.ref, m.refs.join(','), path.basename(m.weights)]),
      [
        ['meta/llama-sharded', 'hf:meta/llama-sharded@main', 'main', 'model.safetensors.index.json'],
        ['old/gpt2-pt', 'hf:old/gpt2-pt@main', 'main', 'pytorch_model.bin'],
        ['org/gpt2-tiny', 'hf:org/gpt2-tiny@main', 'main', 'model.safetensors'],
        ['org/gpt2-tiny', 'hf:org/gpt2-tiny@pr/3', 'pr/3,v1', 'model.safetensors'],
      ],
    );
    for (const m of models) assert.equal(resolveHfRef(m.ref, hub).folder, m.folder, m.ref);
  });
  it('lists nothing for an absent cache and stops at the limit', () => {
    assert.deepEqual(listCachedModels(tmp.file('no-such-hub')), []);
    assert.equal(listCachedModels(hub, 2).length, 2);
    assert.equal(resolveHfRef('hf:old/gpt2-pt', hub).commit, pytorch, 'PyTorch-only snapshots resolve too');
  });
  it('tells which cached model a file lies in', () => {
    const [m] = listCachedModels(hub);
    assert.deepEqual(cachedModelOf(m.weights, hub), { repoId: m.repoId, commit: m.commit, ref: m.ref });
    assert.equal(cachedModelOf(path.join(hub, 'models--org--gpt2-tiny', 'snapshots', old, 'model.safetensors'), hub)?.ref, 'hf:org/gpt2-tiny@pr/3');
    assert.equal(cachedModelOf(hfFixture('gpt2-tiny'), hub), undefined);
  });
});
