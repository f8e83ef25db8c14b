/**
 * Folder outputs under attack (issue 18, findings 1-4): `--out` onto an earlier output that holds
 * the command's own inputs, a folder with a user's files beside our output, side files beside B
 * that are devices or FIFOs, and temporary folders of a killed run. The built CLI runs on copies
 * of the gpt2-tiny fixture; what the user had must come out unchanged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hfFixture } from '../helpers/hfFixtures';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';
import { assertRefused, assertUnchanged, deadPid, mkfifo, root, runCli, snapshot } from '../helpers/hostile';

const MANIFEST = '.rebasin-output.json';

describe('folder outputs (CLI)', () => {
  const tmp = tempDir('rebasin-out-folders-');
  /** A fresh folder holding copies of gpt2-tiny as a/ and b/. */
  function pair(name: string): { d: string; a: string; b: string; p: (n: string) => string } {
    const d = path.join(tmp.dir, name);
    fs.mkdirSync(d);
    const p = (n: string): string => path.join(d, n);
    fs.cpSync(hfFixture('gpt2-tiny'), p('a'), { recursive: true });
    fs.cpSync(hfFixture('gpt2-tiny'), p('b'), { recursive: true });
    return { d, a: p('a'), b: p('b'), p };
  }

  before(() => execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' }));
  after(() => tmp.cleanup());

  describe('1. an output folder holding a file the command reads is refused', () => {
    for (const [label, file, extra] of [
      ['the spec', 'spec.json', ['--spec']],
      ['the model config', 'm.json', ['--model']],
      ['the token data', 'tok.npy', ['--method', 'activation', '--data']],
      ['the tokenizer', 'my-tokenizer.json', ['--method', 'activation', '--data', 'TEXT', '--tokenizer']],
    ] as const) {
      it(`align --out prev refuses when prev holds ${label}, and keeps it`, async () => {
        const { a, b, p } = pair(`holds-${file}`);
        const prev = p('prev');
        const first = await runCli(['align', a, b, '--out', prev]);
        assert.equal(first.code, 0, first.stderr);
        fs.writeFileSync(path.join(prev, file), file === 'spec.json' ? (await runCli(['spec', a, '--json'])).stdout : '{"family": "mlp"}');
        fs.writeFileSync(p('text.txt'), 'hello world');
        const snap = snapshot(prev);
        const args = extra.map((x) => (x === 'TEXT' ? p('text.txt') : x));
        const r = await runCli(['align', a, b, '--out', prev, ...args, path.join(prev, file)]);
        assertRefused(r, file, /refusing to write over an input/);
        assertUnchanged(prev, snap);
      });
    }
  });

  it('align --out over the labels read beside an .npy of images is refused', async () => {
    const { d, p } = pair('labels');
    await writeMlp(p('a.safetensors'), randomMlp([8, 6, 3], 1));
    await writeMlp(p('b.safetensors'), randomMlp([8, 6, 3], 2));
    fs.writeFileSync(p('x.npy'), 'images');
    fs.writeFileSync(p('y.npy'), 'labels');
    const snap = snapshot(d);
    const r = await runCli(['align', p('a.safetensors'), p('b.safetensors'), '--method', 'activation', '--data', p('x.npy'), '--out', p('y.npy')]);
    assertRefused(r, 'y.npy', /refusing to write over an input/);
    assertUnchanged(d, snap);
  });

  describe('2. only what we wrote is replaced', () => {
    it('an earlier output is replaced; with a file or a folder added it is refused and left as it was', async () => {
      const { a, b, p } = pair('manifest');
      const out = p('out');
      assert.equal((await runCli(['align', a, b, '--out', out])).code, 0);
      const manifest = JSON.parse(fs.readFileSync(path.join(out, MANIFEST), 'utf8')) as { files: string[] };
      assert.deepEqual(manifest.files, ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
      // Again onto our own output: replaced.
      const again = await runCli(['align', a, b, '--out', out]);
      assert.equal(again.code, 0, again.stderr);
      for (const [added, make] of [
        ['note.txt', (x: string) => fs.writeFileSync(x, 'my notes')],
        ['runs', (x: string) => fs.mkdirSync(x)],
      ] as const) {
        make(path.join(out, added));
        const snap = snapshot(out);
        const r = await runCli(['align', a, b, '--out', out]);
        assertRefused(r, 'out', new RegExp(`\`${added}\`, which Re-Basin did not write`));
        assertUnchanged(out, snap);
        fs.rmSync(path.join(out, added), { recursive: true });
      }
    });

    it('a folder whose model.safetensors carries rebasin.tool but has no manifest is refused, not wiped', async () => {
      const { a, b, p } = pair('no-manifest');
      const out = p('out');
      assert.equal((await runCli(['align', a, b, '--out', out])).code, 0);
      fs.rmSync(path.join(out, MANIFEST)); // as an earlier version wrote it
      fs.writeFileSync(path.join(out, 'README.md'), 'my model card');
      fs.mkdirSync(path.join(out, 'eval'));
      const snap = snapshot(out);
      const r = await runCli(['align', a, b, '--out', out]);
      assertRefused(r, 'out', /not empty and was not written by Re-Basin/);
      assertUnchanged(out, snap);
      assert.ok(fs.existsSync(path.join(out, 'eval')));
    });
  });

  describe('3. side files beside B must be regular files', () => {
    for (const [name, target] of [
      ['tokenizer.json', '/dev/zero'],
      ['generation_config.json', '/dev/urandom'],
    ] as const) {
      it(`${name} linked to ${target} is refused, nothing written`, async () => {
        const { d, a, b } = pair(`dev-${name}`);
        fs.rmSync(path.join(b, name));
        fs.symlinkSync(target, path.join(b, name));
        const snap = snapshot(d);
        const r = await runCli(['align', a, b, '--out', path.join(d, 'out')]);
        assertRefused(r, name, /not a regular file \(it is a device; in b/);
        assertUnchanged(d, snap);
      });
    }

    it('a side file that is not valid JSON is refused; copies are not world-writable', async () => {
      const { d, a, b } = pair('bad-json');
      fs.writeFileSync(path.join(b, 'generation_config.json'), '{"truncated": ');
      const r = await runCli(['align', a, b, '--out', path.join(d, 'out')]);
      assertRefused(r, 'generation_config.json', /not valid JSON/);
      assert.ok(!fs.existsSync(path.join(d, 'out')));
      fs.writeFileSync(path.join(b, 'generation_config.json'), '{}');
      fs.chmodSync(path.join(b, 'tokenizer.json'), 0o666);
      const ok = await runCli(['align', a, b, '--out', path.join(d, 'out')]);
      assert.equal(ok.code, 0, ok.stderr);
      for (const f of fs.readdirSync(path.join(d, 'out'))) assert.equal(fs.statSync(path.join(d, 'out', f)).mode & 0o002, 0, `${f} is not world-writable`);
    });
  });

  describe('4. FIFOs and killed runs', () => {
    for (const name of ['tokenizer.json', 'config.json']) {
      it(`a FIFO ${name} beside B is refused at once (no hang)`, async () => {
        const { d, a, b } = pair(`fifo-${name}`);
        fs.rmSync(path.join(b, name));
        mkfifo(path.join(b, name));
        const snap = snapshot(d);
        const r = await runCli(['align', a, b, '--out', path.join(d, 'out')], { timeoutMs: 30_000 });
        assertRefused(r, name, /not a regular file \(it is a FIFO/);
        assertUnchanged(d, snap);
      });
    }

    it('a FIFO config.json beside B is refused for a single-file output too', async () => {
      const { d, a, b } = pair('fifo-config-file');
      fs.rmSync(path.join(b, 'config.json'));
      mkfifo(path.join(b, 'config.json'));
      const r = await runCli(['align', a, b, '--out', path.join(d, 'o.safetensors')], { timeoutMs: 30_000 });
      assertRefused(r, 'config.json', /not a regular file/);
      assert.ok(!fs.existsSync(path.join(d, 'o.safetensors')));
    });

    it('a FIFO config.json beside A (named by its weights file) does not hang barrier', async () => {
      const { a, b, p } = pair('fifo-config-barrier');
      fs.rmSync(path.join(a, 'config.json'));
      mkfifo(path.join(a, 'config.json'));
      fs.writeFileSync(p('text.txt'), 'hello world, some text for the model to read\n');
      const r = await runCli(['barrier', path.join(a, 'model.safetensors'), path.join(b, 'model.safetensors'), '--data', p('text.txt'), '--steps', '3', '--workers', '1'], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('rebasin:')).length, 1, r.stderr);
    });

    it('SIGTERM ends the process after cleanup even when a read is stuck in the operating system', async () => {
      const d = path.join(tmp.dir, 'stuck');
      fs.mkdirSync(d);
      const p = (n: string): string => path.join(d, n);
      await writeMlp(p('a.safetensors'), randomMlp([784, 1024, 1024, 1024, 10], 21));
      await writeMlp(p('b.safetensors'), randomMlp([784, 1024, 1024, 1024, 10], 22));
      mkfifo(p('fifo'));
      // A preload that leaves a read of a FIFO pending in the thread pool (no writer ever comes):
      // such a read holds a Node process open, and even process.exit waits for it.
      fs.writeFileSync(p('stuck.cjs'), `if (require('node:worker_threads').isMainThread) require('node:fs').readFile(${JSON.stringify(p('fifo'))}, () => undefined);\n`);
      const saved = process.env.NODE_OPTIONS;
      process.env.NODE_OPTIONS = `${saved ?? ''} --require ${p('stuck.cjs')}`.trim();
      let sentAt = 0;
      let r;
      try {
        r = await runCli(['align', p('a.safetensors'), p('b.safetensors'), '--out', p('o.safetensors'), '--debug'], {
          timeoutMs: 60_000,
          onSpawn: (child, output) => {
            const poll = setInterval(() => {
              if (/\[engine\]/.test(output.stderr())) {
                clearInterval(poll);
                sentAt = Date.now();
                child.kill('SIGTERM');
              }
            }, 50);
            child.on('exit', () => clearInterval(poll));
          },
        });
      } finally {
        if (saved === undefined) delete process.env.NODE_OPTIONS;
        else process.env.NODE_OPTIONS = saved;
      }
      assert.match(r.stderr, /cancelled; nothing was written/);
      assert.ok(r.code === 130 || r.signal === 'SIGTERM', `ended by exit 130 or the signal: ${r.code} ${r.signal}`);
      assert.ok(Date.now() - sentAt < 15_000, 'ended promptly');
      assert.ok(!fs.existsSync(p('o.safetensors')));
    });

    it('the temporary folders of a killed run are removed by the next write; a live run\'s are kept', async () => {
      const { d, a, b, p } = pair('stale');
      const dead = `.out.${deadPid()}.0123456789ab.tmp`;
      const live = `.out.${process.pid}.0123456789ab.tmp`;
      for (const t of [dead, live]) {
        fs.mkdirSync(p(t));
        fs.writeFileSync(path.join(p(t), 'model.safetensors'), 'partial');
      }
      const r = await runCli(['align', a, b, '--out', p('out')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!fs.existsSync(p(dead)), 'stale temporary folder removed');
      assert.ok(fs.existsSync(p(live)), 'live temporary folder kept');
      void d;
    });
  });
});
