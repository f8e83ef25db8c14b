/**
 * The worker bundle on its own, as the installed extension runs it: dist/ copied into a folder
 * with no node_modules anywhere above it (tfjs and the wasm binaries are inside). It computes on
 * wasm and cpu, and a `nativeBackendPath` that holds no tfjs-node is refused naming that folder
 * (the extension's `rebasin.nativeBackendPath` reaches the worker this way).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { EngineClient } from '../../../src/engine/client';
import { EngineError } from '../../../src/engine/errors';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { randomMlp, writeMlp } from '../helpers/engine-fixtures';

const root = path.join(__dirname, '..', '..', '..');
let tmp: TmpDir;
let workerScript: string;
const mlp = randomMlp([6, 8, 3], 1);

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
  tmp = await makeTmpDir('rebasin-bundle-');
  cpSync(path.join(root, 'dist'), tmp.file('extension/dist'), { recursive: true });
  workerScript = tmp.file('extension/dist/worker.js');
  for (let dir = tmp.path; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    assert.ok(!existsSync(path.join(dir, 'node_modules')), `${dir} has node_modules: the test needs a folder without`);
  }
  await writeMlp(tmp.file('a.safetensors'), mlp);
});
after(() => tmp.remove());

describe('dist/worker.js without node_modules', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`starts on ${backend} and computes`, async () => {
      const client = EngineClient.start({ backend, workers: 1, workerScript });
      try {
        assert.equal(await client.backend(), backend);
        const stats = await client.request({ kind: 'tensorStats', path: tmp.file('a.safetensors'), tensor: 'layers.0.weight', bins: 8 });
        const data = Array.from(mlp.get('layers.0.weight')!.data);
        assert.equal(stats.count, 48);
        assert.equal(stats.min, Math.min(...data));
        assert.equal(stats.max, Math.max(...data));
        assert.ok(Math.abs(stats.mean - data.reduce((s, x) => s + x, 0) / data.length) < 1e-6, `mean ${stats.mean}`);
      } finally {
        await client.dispose();
      }
    });
  }

  it('refuses a native backend folder without tfjs-node, naming the folder', async () => {
    const empty = tmp.file('not-tfjs-node');
    mkdirSync(empty);
    const client = EngineClient.start({ backend: 'tensorflow', nativeBackendPath: empty, workers: 1, workerScript });
    try {
      await assert.rejects(client.backend(), (e: unknown) => e instanceof EngineError && e.kind === 'BackendUnavailable' && e.message.includes(`cannot load from ${empty}`));
    } finally {
      await client.dispose();
    }
  });
});
