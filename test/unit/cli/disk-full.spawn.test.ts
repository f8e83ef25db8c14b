/**
 * A full disk while writing an output: the CLI fails with one line naming the output file,
 * and the target folder holds no partial file and no temp file. The full disk is a real one:
 * a 64 KiB tmpfs (mounting needs root, which the build machines and CI have).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const isRoot = process.getuid?.() === 0;

describe('output on a full disk', { skip: isRoot ? false : 'mounting a small tmpfs needs root' }, () => {
  const tmp = tempDir('rebasin-diskfull-');
  const full = path.join(tmp.dir, 'full');
  const a = path.join(tmp.dir, 'a.safetensors');
  const b = path.join(tmp.dir, 'b.safetensors');

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    // ~400 KB per checkpoint: far more than the 64 KiB the folder can hold.
    await writeMlp(a, randomMlp([64, 512, 128, 10], 1));
    await writeMlp(b, randomMlp([64, 512, 128, 10], 2));
    fs.mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]);
  });
  after(() => {
    spawnSync('umount', [full]);
    tmp.cleanup();
  });

  for (const [command, extra] of [['merge', ['--no-align']], ['align', []]] as const) {
    it(`${command} reports ENOSPC naming the output and leaves nothing behind`, () => {
      const out = path.join(full, `${command}.safetensors`);
      const r = spawnSync(process.execPath, [cli, command, a, b, '--out', out, ...extra], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 1, r.stderr);
      // Progress lines come first on stderr; the error is the one last line.
      const last = r.stderr.trim().split('\n').pop() ?? '';
      assert.match(last, new RegExp(`^rebasin: ${command}\\.safetensors: .*(ENOSPC|no space)`, 'i'), r.stderr);
      assert.deepEqual(fs.readdirSync(full), []);
    });
  }
});
