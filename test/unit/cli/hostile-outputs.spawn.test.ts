/**
 * Hostile situations for outputs (issue 10, points 5, 6, 9): `--out` over a file the command
 * reads or over something that is not a file, folders that cannot take the output, signals,
 * leftovers of killed runs, a failed equivalence check, and numbers at the edge of their dtype.
 * The built CLI runs in a child process; inputs are generated here and must come out unchanged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { randomMlp, tempDir, writeMlp, type Mlp } from '../helpers/engine-fixtures';
import { assertRefused, assertUnchanged, deadPid, mkfifo, root, runCli, snapshot } from '../helpers/hostile';

const WIDTHS = [8, 16, 12, 3];

/** The MLP with every weight multiplied by `k` (kept float32). */
function scaled(m: Mlp, k: number): Mlp {
  return new Map([...m].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((v) => v * k) }]));
}

describe('hostile outputs (CLI)', () => {
  const tmp = tempDir('rebasin-hostile-out-');
  const f = (name: string): string => path.join(tmp.dir, name);

  /** A fresh folder holding a.safetensors, b.safetensors and data.safetensors. */
  async function folder(name: string): Promise<{ d: string; a: string; b: string; data: string; p: (n: string) => string }> {
    const d = f(name);
    fs.mkdirSync(d);
    const p = (n: string): string => path.join(d, n);
    await writeMlp(p('a.safetensors'), randomMlp(WIDTHS, 1));
    await writeMlp(p('b.safetensors'), randomMlp(WIDTHS, 2));
    const n = 16;
    const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.cos(i * 0.3));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
    await writeSafetensors(p('data.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
    return { d, a: p('a.safetensors'), b: p('b.safetensors'), data: p('data.safetensors'), p };
  }

  before(() => execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' }));
  after(() => tmp.cleanup());

  // ---------------------------------------------------------------- 5. --out is never an input

  describe('--out may not be a file the command reads', () => {
    for (const [label, target, extra] of [
      ['checkpoint A', 'a.safetensors', []],
      ['checkpoint B', 'b.safetensors', []],
      ['the spec', 'spec.json', ['--spec', 'spec.json']],
      ['the model config', 'model.json', ['--model', 'model.json']],
      ['the data', 'data.safetensors', ['--data', 'data.safetensors']],
      ['the default model config beside A', 'a.safetensors.rebasin.json', []],
    ] as const) {
      it(`align refuses --out over ${label}`, async () => {
        const { d, a, b, p } = await folder(`out-${target}`);
        const spec = await runCli(['spec', a, '--json']);
        fs.writeFileSync(p('spec.json'), spec.stdout);
        fs.writeFileSync(p('model.json'), JSON.stringify({ family: 'mlp', activation: 'relu' }));
        fs.writeFileSync(p('a.safetensors.rebasin.json'), JSON.stringify({ activation: 'relu' }));
        const snap = snapshot(d);
        const r = await runCli(['align', a, b, '--out', p(target), ...extra.map((x) => (x.includes('.') ? p(x) : x))]);
        assertRefused(r, target, /refusing to write over an input/);
        assert.ok(r.ms < 15_000);
        assertUnchanged(d, snap);
      });
    }

    it('merge refuses --out over a shard of a sharded input, and over its index', async () => {
      const { d, a, p } = await folder('out-shard');
      fs.copyFileSync(a, p('s1.safetensors'));
      const ck = await openCheckpoint(a);
      fs.writeFileSync(p('model.safetensors.index.json'), JSON.stringify({ weight_map: Object.fromEntries(ck.tensors.map((t) => [t.name, 's1.safetensors'])) }));
      await ck.close();
      const snap = snapshot(d);
      for (const target of ['s1.safetensors', 'model.safetensors.index.json']) {
        const r = await runCli(['merge', a, p('model.safetensors.index.json'), '--out', p(target)]);
        assertRefused(r, target, /refusing to write over an input/);
      }
      assertUnchanged(d, snap);
    });

    it('a hard link to an input is that input', async () => {
      const { d, a, b, p } = await folder('out-hardlink');
      fs.linkSync(b, p('link.safetensors'));
      const snap = snapshot(d);
      assertRefused(await runCli(['align', a, b, '--out', p('link.safetensors')]), 'link.safetensors', /refusing to write over an input/);
      assertUnchanged(d, snap);
    });
  });

  describe('--out may not be something other than a regular file', () => {
    it('a FIFO as --out is refused and stays a FIFO', async () => {
      const { d, a, b, p } = await folder('out-fifo');
      mkfifo(p('o.safetensors'));
      const snap = snapshot(d);
      assertRefused(await runCli(['align', a, b, '--out', p('o.safetensors')]), 'o.safetensors', /not a regular file \(it is a FIFO\)/);
      assertUnchanged(d, snap);
    });

    it('a folder as --out is refused', async () => {
      const { d, a, b, p } = await folder('out-dir');
      fs.mkdirSync(p('o.safetensors'));
      const snap = snapshot(d);
      assertRefused(await runCli(['merge', a, b, '--out', p('o.safetensors')]), 'o.safetensors', /not a regular file \(it is a folder\)/);
      assertUnchanged(d, snap);
    });

    it('a link to a device (/dev/null) as --out is refused, the device untouched', async () => {
      const { d, a, b, p } = await folder('out-dev');
      fs.symlinkSync('/dev/null', p('o.safetensors'));
      const snap = snapshot(d);
      assertRefused(await runCli(['align', a, b, '--out', p('o.safetensors')]), 'o.safetensors', /not a regular file \(it is a device\)/);
      assertUnchanged(d, snap);
      assert.ok(fs.statSync('/dev/null').isCharacterDevice());
    });
  });

  describe('the output folder is checked before computing', () => {
    it('a missing output folder is refused at once', async () => {
      const { d, a, b, p } = await folder('out-missing');
      const snap = snapshot(d);
      const r = await runCli(['align', a, b, '--out', p('no/such/o.safetensors')]);
      assertRefused(r, 'o.safetensors', /output folder .*no\/such does not exist/);
      assertUnchanged(d, snap);
    });

    it('an output "folder" that is a file is refused', async () => {
      const { d, a, b } = await folder('out-notdir');
      const snap = snapshot(d);
      assertRefused(await runCli(['merge', a, b, '--out', path.join(a, 'o.safetensors')]), 'o.safetensors', /is not a folder/);
      assertUnchanged(d, snap);
    });

    it('a read-only output folder is refused (as root, who may write anywhere else: a read-only tmpfs)', async () => {
      const { a, b, p } = await folder('out-ro');
      fs.mkdirSync(p('ro'));
      // Root bypasses folder permissions, not a read-only file system (CI and these machines run as root).
      const asRoot = process.getuid?.() === 0;
      if (asRoot) execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', p('ro')]);
      else fs.chmodSync(p('ro'), 0o555);
      try {
        assertRefused(await runCli(['align', a, b, '--out', p('ro/o.safetensors')]), 'o.safetensors', /is not writable/);
      } finally {
        if (asRoot) spawnSync('umount', [p('ro')]);
        else fs.chmodSync(p('ro'), 0o755);
      }
    });

    it('an output name over 255 bytes is refused in one line', async () => {
      const { d, a, b, p } = await folder('out-toolong');
      const snap = snapshot(d);
      const name = `${'é'.repeat(125)}.safetensors`; // 262 bytes
      assertRefused(await runCli(['align', a, b, '--out', p(name)]), '.safetensors', /longer than 255 bytes/);
      assertUnchanged(d, snap);
    });
  });

  describe('temporary files', () => {
    it('a 242-character output name is written (its temp name fits NAME_MAX) with nothing left over', async () => {
      const { d, a, b, p } = await folder('out-242');
      const name = `${'x'.repeat(230)}.safetensors`;
      assert.equal(name.length, 242);
      const before = snapshot(d);
      const r = await runCli(['align', a, b, '--out', p(name)]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([...snapshot(d).keys()].sort(), [...before.keys(), name].sort());
    });

    it('temp files of a killed run (pid gone) are removed on the next write; a live run\'s are kept', async () => {
      const { d, a, b, p } = await folder('out-stale');
      const dead = `.o.safetensors.${deadPid()}.0123456789ab.tmp`;
      const live = `.o.safetensors.${process.pid}.ba9876543210.tmp`;
      fs.writeFileSync(p(dead), 'half-written');
      fs.writeFileSync(p(live), 'still being written');
      const r = await runCli(['merge', a, b, '--out', p('o.safetensors')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!fs.existsSync(p(dead)), 'stale temp removed');
      assert.ok(fs.existsSync(p(live)), 'live temp kept');
      assert.ok(fs.existsSync(p('o.safetensors')));
      void d;
    });

    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      it(`${signal} cancels an align like Ctrl-C and leaves nothing behind`, async () => {
        const d = f(`sig-${signal}`);
        fs.mkdirSync(d);
        const a = path.join(d, 'a.safetensors');
        const b = path.join(d, 'b.safetensors');
        await writeMlp(a, randomMlp([784, 1024, 1024, 1024, 10], 21));
        await writeMlp(b, randomMlp([784, 1024, 1024, 1024, 10], 22));
        const snap = snapshot(d);
        let sentAt = 0;
        const r = await runCli(['align', a, b, '--out', path.join(d, 'o.safetensors'), '--debug'], {
          // --debug prints the engine's log lines at once: the first one means the run is under way
          // and its signal handlers are in place (progress waits a few seconds off a terminal).
          onSpawn: (child, output) => {
            const poll = setInterval(() => {
              if (/\[engine\]/.test(output.stderr())) {
                clearInterval(poll);
                sentAt = Date.now();
                child.kill(signal);
              }
            }, 50);
            child.on('exit', () => clearInterval(poll));
          },
        });
        assert.equal(r.code, 130, r.stderr);
        assert.match(r.stderr, /cancelled; nothing was written/);
        assert.ok(Date.now() - sentAt < 10_000, 'stopped promptly');
        assertUnchanged(d, snap);
      });
    }
  });

  // ---------------------------------------------------------------- 6. a failed equivalence check

  describe('a failed equivalence check', () => {
    /** A spec that permutes layer 0's units without the next layer's columns: π(B) computes another function. */
    function brokenSpec(p: (n: string) => string): void {
      fs.writeFileSync(p('bad-spec.json'), JSON.stringify({ axes: { 'layers.0.weight': ['P_0', null], 'layers.0.bias': ['P_0'] } }));
    }

    it('writes nothing, and says so (text and JSON)', async () => {
      const { d, a, b, p } = await folder('equiv-fail');
      brokenSpec(p);
      const snap = snapshot(d);
      const r = await runCli(['align', a, b, '--spec', p('bad-spec.json'), '--out', p('o.safetensors')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /b\.safetensors: alignment changed the network's function: .*nothing was written/);
      assertUnchanged(d, snap);
      const j = await runCli(['align', a, b, '--spec', p('bad-spec.json'), '--out', p('o.safetensors'), '--json']);
      assert.equal(j.code, 1, j.stderr);
      const out = JSON.parse(j.stdout) as { written?: boolean; out?: string; equivalence?: { ok: boolean } };
      assert.equal(out.equivalence?.ok, false);
      assert.equal(out.written, false);
      assert.equal(out.out, undefined);
      assertUnchanged(d, snap);
    });

    it('--keep-on-mismatch keeps the output, and says so', async () => {
      const { a, b, p } = await folder('equiv-keep');
      brokenSpec(p);
      const r = await runCli(['align', a, b, '--spec', p('bad-spec.json'), '--out', p('o.safetensors'), '--keep-on-mismatch', '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /o\.safetensors was kept \(--keep-on-mismatch\)/);
      assert.equal((JSON.parse(r.stdout) as { written?: boolean }).written, true);
      assert.ok(fs.existsSync(p('o.safetensors')));
    });
  });

  // ---------------------------------------------------------------- 9. numbers

  describe('numbers at the edge of their dtype', () => {
    it('merging an F16 model with an F32 one writes the wider dtype and says so, never Inf', async () => {
      const { d, p } = await folder('f16-f32');
      const base = randomMlp(WIDTHS, 5);
      const halfSrc = [...base].map(([name, t]) => ({ name, dtype: 'F16', shape: t.shape, read: async () => encodeFromFloat32('F16', t.data) }));
      await writeSafetensors(p('half.safetensors'), halfSrc);
      await writeMlp(p('big.safetensors'), scaled(randomMlp(WIDTHS, 6), 1e6)); // far beyond F16's 65504
      const r = await runCli(['merge', p('half.safetensors'), p('big.safetensors'), '--no-align', '--out', p('m.safetensors'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout) as { widened?: { tensor: string; from: string; to: string }[] };
      assert.equal(res.widened?.length, 6);
      assert.deepEqual(res.widened?.[0] && { from: res.widened[0].from, to: res.widened[0].to }, { from: 'F16', to: 'F32' });
      const m = await openCheckpoint(p('m.safetensors'));
      for (const t of m.tensors) {
        assert.equal(t.dtype, 'F32');
        assert.ok((await m.readFloat32(t.name)).every(Number.isFinite), `${t.name} finite`);
      }
      await m.close();
      const text = await runCli(['merge', p('half.safetensors'), p('big.safetensors'), '--no-align', '--out', p('m2.safetensors')]);
      assert.match(text.stdout, /note: 6 tensor\(s\) written as F32, not F16/);
      void d;
    });

    it('merging F16 with BF16 (neither holds the other) writes F32, finite', async () => {
      const { p } = await folder('f16-bf16');
      await writeSafetensors(p('h.safetensors'), [{ name: 'w', dtype: 'F16', shape: [2, 2], read: async () => encodeFromFloat32('F16', new Float32Array([60000, 1, 1, 1])) }]);
      await writeSafetensors(p('bf.safetensors'), [{ name: 'w', dtype: 'BF16', shape: [2, 2], read: async () => encodeFromFloat32('BF16', new Float32Array([1e30, 1, 1, 1])) }]);
      const r = await runCli(['merge', p('h.safetensors'), p('bf.safetensors'), '--no-align', '--out', p('m.safetensors'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const m = await openCheckpoint(p('m.safetensors'));
      assert.equal(m.get('w')?.dtype, 'F32');
      assert.ok((await m.readFloat32('w')).every(Number.isFinite));
      await m.close();
    });

    it('finite weights near ±3e38 align without "NaN or infinite weights"', async () => {
      const { p } = await folder('near-max');
      await writeMlp(p('ha.safetensors'), scaled(randomMlp(WIDTHS, 7), 3e38));
      await writeMlp(p('hb.safetensors'), scaled(randomMlp(WIDTHS, 8), 3e38));
      const r = await runCli(['align', p('ha.safetensors'), p('hb.safetensors'), '--out', p('o.safetensors'), '--json', '--keep-on-mismatch']);
      assert.doesNotMatch(r.stderr, /NaN or infinite/);
      const res = JSON.parse(r.stdout) as { objectiveAfter: number; objectiveBefore: number; out?: string };
      assert.ok(Number.isFinite(res.objectiveAfter) && res.objectiveAfter >= res.objectiveBefore, JSON.stringify(res).slice(0, 300));
      assert.ok(fs.existsSync(p('o.safetensors')));
    });
  });
});
