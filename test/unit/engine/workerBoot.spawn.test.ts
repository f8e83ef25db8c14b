/**
 * dist/workerBoot.js, the CLI's default worker entry: it runs dist/worker.js from the V8 code
 * cache the build wrote beside it. The same requests give the same results as dist/worker.js
 * started directly, with the build's cache, with a corrupt one and with a stale one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { EngineClient } from '../../../src/engine/client';
import type { AlignResult } from '../../../src/engine/protocol';
import { permuteMlp, randomMlp, randomPerm, tempDir, writeMlp } from '../helpers/engine-fixtures';

const root = path.join(__dirname, '..', '..', '..');
const dist = path.join(root, 'dist');
const tmp = tempDir('rebasin-boot-');
const file = (name: string): string => path.join(tmp.dir, name);

/** A copy of the worker bundles in `dir` (wasm binaries linked), with `cache` as worker.js.cache when given. */
function bundleIn(dir: string, cache?: Buffer, cacheAgeSeconds = 0): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['worker.js', 'workerBoot.js']) copyFileSync(path.join(dist, f), path.join(dir, f));
  symlinkSync(path.join(dist, 'wasm'), path.join(dir, 'wasm'));
  if (cache) {
    writeFileSync(path.join(dir, 'worker.js.cache'), cache);
    if (cacheAgeSeconds) {
      const old = Date.now() / 1000 - cacheAgeSeconds;
      utimesSync(path.join(dir, 'worker.js.cache'), old, old);
    }
  }
  return path.join(dir, 'workerBoot.js');
}

async function alignWith(workerScript: string, out: string): Promise<Omit<AlignResult, 'seconds' | 'out'>> {
  const client = EngineClient.start({ backend: 'wasm', workers: 1, workerScript });
  try {
    const { seconds: _s, out: _o, ...rest } = await client.request({ kind: 'align', a: file('a.safetensors'), b: file('b.safetensors'), out: file(out), method: 'weight', seed: 0, maxIter: 50 });
    return rest;
  } finally {
    await client.dispose();
  }
}

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
  assert.ok(existsSync(path.join(dist, 'worker.js.cache')), 'the build writes the code cache of dist/worker.js');
  const A = randomMlp([20, 16, 12, 4], 1);
  await writeMlp(file('a.safetensors'), A);
  await writeMlp(file('b.safetensors'), permuteMlp(A, [randomPerm(16, 7), randomPerm(12, 8)]));
});

after(() => tmp.cleanup());

test('workerBoot.js gives the results of worker.js, with the build\'s code cache, a corrupt one and a stale one', async () => {
  const direct = await alignWith(path.join(dist, 'worker.js'), 'direct.safetensors');
  const cases: [string, string][] = [
    ['build cache', bundleIn(file('good'), readFileSync(path.join(dist, 'worker.js.cache')))],
    ['corrupt cache', bundleIn(file('corrupt'), Buffer.from('not a code cache'))],
    ['stale cache', bundleIn(file('stale'), readFileSync(path.join(dist, 'worker.js.cache')), 3600)],
    ['no cache', bundleIn(file('none'))],
  ];
  for (const [label, script] of cases) {
    const booted = await alignWith(script, `${label.replace(/\W/g, '-')}.safetensors`);
    assert.deepEqual(booted, direct, label);
    assert.deepEqual(readFileSync(file(`${label.replace(/\W/g, '-')}.safetensors`)), readFileSync(file('direct.safetensors')), `${label}: the same output bytes`);
  }
});
