/**
 * Hostile inputs (issue 10, points 2, 3, 7, 8, 10): files people download or find in busy
 * folders, given to the built CLI in a child process. Every input is generated here (no stored
 * blobs). Each refusal: exit 1, one stderr line naming the file in the user's terms, within a
 * bounded time, and the folder left exactly as it was.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:net';
import { loadDataset } from '../../../src/core/data';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';
import {
  assertRefused, assertUnchanged, compressedZeros, idxHeader, mkfifo, npyBytes, rawSafetensors, root, runCli, snapshot, sparseFile, unixSocket, zipBytes,
} from '../helpers/hostile';

const WIDTHS = [8, 16, 12, 3];

describe('hostile inputs (CLI)', () => {
  const tmp = tempDir('rebasin-hostile-in-');
  const dir = tmp.dir;
  const f = (name: string): string => path.join(dir, name);
  const a = f('a.safetensors');
  const b = f('b.safetensors');
  const data = f('data.safetensors');
  let socket: Server | undefined;

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    await writeMlp(a, randomMlp(WIDTHS, 1));
    await writeMlp(b, randomMlp(WIDTHS, 2));
    const n = 32;
    const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i * 0.37));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
    await writeSafetensors(data, [
      { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
  });
  after(async () => {
    await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
    tmp.cleanup();
  });

  /** Runs a refused command in its own folder and checks nothing changed there. */
  async function refusedIn(sub: string, args: (d: string) => string[], file: (d: string) => string, problem: RegExp, setup: (d: string) => void | Promise<void>, timeoutMs = 20_000) {
    const d = f(sub);
    fs.mkdirSync(d);
    await setup(d);
    const snap = snapshot(d);
    const r = await runCli(args(d), { timeoutMs });
    assertRefused(r, file(d), problem);
    assertUnchanged(d, snap);
    return r;
  }

  // ---------------------------------------------------------------- 2. only regular files are read

  describe('only regular files are read', () => {
    it('a FIFO given as a checkpoint is refused at once (no hang)', async () => {
      const r = await refusedIn('fifo-ckpt', (d) => ['inspect', path.join(d, 'x.safetensors')], (d) => path.join(d, 'x.safetensors'), /not a regular file \(it is a FIFO\)/, (d) => mkfifo(path.join(d, 'x.safetensors')));
      assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
    });

    it('a FIFO given as checkpoint B of align is refused', async () => {
      await refusedIn('fifo-b', (d) => ['align', a, path.join(d, 'b.safetensors'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'b.safetensors'), /not a regular file/, (d) => mkfifo(path.join(d, 'b.safetensors')));
    });

    it('a symlink to a FIFO is resolved and refused', async () => {
      await refusedIn('fifo-link', (d) => ['inspect', path.join(d, 'x.safetensors')], (d) => path.join(d, 'x.safetensors'), /not a regular file \(it is a FIFO\)/, (d) => {
        mkfifo(path.join(d, 'pipe'));
        fs.symlinkSync('pipe', path.join(d, 'x.safetensors'));
      });
    });

    // A folder is a checkpoint only as a Hugging Face folder (its model.safetensors or index).
    it('a folder that is not a Hugging Face checkpoint is refused in one line (not EISDIR)', async () => {
      await refusedIn('dir-ckpt', (d) => ['inspect', path.join(d, 'x.safetensors')], (d) => path.join(d, 'x.safetensors'), /folder has neither model\.safetensors nor model\.safetensors\.index\.json/, (d) => fs.mkdirSync(path.join(d, 'x.safetensors')));
    });

    it('a device (a link to /dev/zero) given as a checkpoint is refused', async () => {
      await refusedIn('dev-ckpt', (d) => ['inspect', path.join(d, 'zero.safetensors')], (d) => path.join(d, 'zero.safetensors'), /not a regular file \(it is a device\)/, (d) => fs.symlinkSync('/dev/zero', path.join(d, 'zero.safetensors')));
    });

    it('a unix socket given as a checkpoint is refused', async () => {
      await refusedIn('sock-ckpt', (d) => ['inspect', path.join(d, 's.safetensors')], (d) => path.join(d, 's.safetensors'), /not a regular file \(it is a socket\)/, async (d) => {
        socket = await unixSocket(path.join(d, 's.safetensors'));
      });
    });

    it('a FIFO given as a sharded index is refused', async () => {
      await refusedIn('fifo-index', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], (d) => path.join(d, 'model.safetensors.index.json'), /not a regular file \(it is a FIFO\)/, (d) => mkfifo(path.join(d, 'model.safetensors.index.json')));
    });

    it('a FIFO named as a shard by its index is refused', async () => {
      await refusedIn('fifo-shard', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], () => 's1.safetensors', /not a regular file \(it is a FIFO\)/, (d) => {
        mkfifo(path.join(d, 's1.safetensors'));
        fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 's1.safetensors' } }));
      });
    });

    it('a folder named as a shard is refused', async () => {
      await refusedIn('dir-shard', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], () => 's1.safetensors', /not a regular file \(it is a folder\)/, (d) => {
        fs.mkdirSync(path.join(d, 's1.safetensors'));
        fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 's1.safetensors' } }));
      });
    });

    it('a shard that is a symlink to a file outside the index folder is refused', async () => {
      await refusedIn('link-shard', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], () => 'model.safetensors.index.json', /outside the index's folder/, (d) => {
        fs.symlinkSync(a, path.join(d, 's1.safetensors'));
        fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'layers.0.weight': 's1.safetensors' } }));
      });
    });

    it('a shard named `../x` is refused, and one named `..s1.safetensors` is read', async () => {
      await refusedIn('dotdot-shard', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], () => 'model.safetensors.index.json', /outside the index's folder/, (d) => {
        fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: '../a.safetensors' } }));
      });
      const d = f('dotdot-legal');
      fs.mkdirSync(d);
      fs.copyFileSync(a, path.join(d, '..s1.safetensors'));
      const ck = await openCheckpoint(a);
      const map = Object.fromEntries(ck.tensors.map((t) => [t.name, '..s1.safetensors']));
      await ck.close();
      fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
      const r = await runCli(['inspect', path.join(d, 'model.safetensors.index.json'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { tensors: unknown[] }).tensors.length, 6);
    });

    it('a FIFO given as the spec is refused', async () => {
      await refusedIn('fifo-spec', (d) => ['align', a, b, '--spec', path.join(d, 'spec.json'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'spec.json'), /spec is not a regular file \(it is a FIFO\)/, (d) => mkfifo(path.join(d, 'spec.json')));
    });

    it('a folder given as the spec is refused (not EISDIR)', async () => {
      await refusedIn('dir-spec', (d) => ['align', a, b, '--spec', path.join(d, 'spec.json'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'spec.json'), /spec is not a regular file \(it is a folder\)/, (d) => fs.mkdirSync(path.join(d, 'spec.json')));
    });

    it('a FIFO given as the model config is refused', async () => {
      await refusedIn('fifo-model', (d) => ['align', a, b, '--model', path.join(d, 'model.json'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'model.json'), /model config is not a regular file \(it is a FIFO\)/, (d) => mkfifo(path.join(d, 'model.json')));
    });

    it('a FIFO given as data is refused', async () => {
      await refusedIn('fifo-data', (d) => ['barrier', a, b, '--data', path.join(d, 'd.npz'), '--steps', '2'], (d) => path.join(d, 'd.npz'), /not a regular file or folder \(it is a FIFO\)/, (d) => mkfifo(path.join(d, 'd.npz')));
    });

    it('a FIFO inside an IDX data folder is refused', async () => {
      await refusedIn('fifo-idx', (d) => ['barrier', a, b, '--data', path.join(d, 'mnist'), '--steps', '2'], () => 't10k-images-idx3-ubyte', /not a regular file \(it is a FIFO\)/, (d) => {
        fs.mkdirSync(path.join(d, 'mnist'));
        mkfifo(path.join(d, 'mnist', 't10k-images-idx3-ubyte'));
        fs.writeFileSync(path.join(d, 'mnist', 't10k-labels-idx1-ubyte'), Buffer.concat([Buffer.from([0, 0, 8, 1]), Buffer.from([0, 0, 0, 1]), Buffer.from([0])]));
      });
    });
  });

  // ---------------------------------------------------------------- 3. bounded reads

  describe('bounded reads', () => {
    it('a 200 MB (sparse) spec is refused by its size before reading', async () => {
      const r = await refusedIn('big-spec', (d) => ['align', a, b, '--spec', path.join(d, 'spec.json'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'spec.json'), /spec is \d+ bytes, over the \d+-byte limit/, (d) => sparseFile(path.join(d, 'spec.json'), 200_000_000, Buffer.from('{"axes":')));
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
    });

    it('a 10 MB (sparse) model config is refused by its size', async () => {
      await refusedIn('big-model', (d) => ['align', a, b, '--model', path.join(d, 'model.json'), '--out', path.join(d, 'o.safetensors')], (d) => path.join(d, 'model.json'), /model config is \d+ bytes, over the/, (d) => sparseFile(path.join(d, 'model.json'), 10_000_000, Buffer.from('{')));
    });

    it('a 200 MB (sparse) sharded index is refused by its size', async () => {
      const r = await refusedIn('big-index', (d) => ['inspect', path.join(d, 'model.safetensors.index.json')], (d) => path.join(d, 'model.safetensors.index.json'), /index is \d+ bytes, over the/, (d) => sparseFile(path.join(d, 'model.safetensors.index.json'), 200_000_000, Buffer.from('{"weight_map":')));
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
    });

    it('a 3 GB (sparse) .npy data file is refused by its size against its header, before reading', async () => {
      const r = await refusedIn('big-npy', (d) => ['barrier', a, b, '--data', path.join(d, 'x.npy'), '--steps', '2'], (d) => path.join(d, 'x.npy'), /npy data holds 3221225344 bytes, shape \[100, 8\] of '<f4' needs 3200/, (d) => {
        sparseFile(path.join(d, 'x.npy'), 3 * 2 ** 30, npyBytes('<f4', [100, 8], new Uint8Array(0)));
        fs.writeFileSync(path.join(d, 'y.npy'), npyBytes('<i8', [100], new Uint8Array(800)));
      });
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
    });

    it('a gzip IDX bomb (1 GB of zeros behind a 10-image header) is refused within a second, in < 300 MB', async () => {
      // Images of 2x4 fit the model's 8 inputs, so the headers pass and the inflation is what refuses.
      const gz = await compressedZeros('gzip', idxHeader([10, 2, 4]), 2 ** 30);
      const r = await refusedIn('gz-bomb', (d) => ['barrier', a, b, '--data', path.join(d, 'mnist'), '--steps', '2'], () => 't10k-images-idx3-ubyte.gz', /decompresses to more than the 96 bytes its header declares/, (d) => {
        fs.mkdirSync(path.join(d, 'mnist'));
        fs.writeFileSync(path.join(d, 'mnist', 't10k-images-idx3-ubyte.gz'), gz);
        fs.writeFileSync(path.join(d, 'mnist', 't10k-labels-idx1-ubyte'), Buffer.concat([idxHeader([10]), Buffer.alloc(10)]));
      });
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
      assert.ok(r.ms < 30_000, `took ${r.ms} ms (process start and engine included)`);
      // The reader alone, in this process: refused within a second.
      const started = Date.now();
      await assert.rejects(loadDataset({ path: path.join(f('gz-bomb'), 'mnist') }, 'test'), /decompression bomb/);
      assert.ok(Date.now() - started < 1000, `reader refused after ${Date.now() - started} ms`);
    });

    it('a deflated .npz bomb (1 GB behind a small npy header) is refused in < 300 MB', async () => {
      const xBomb = await compressedZeros('deflate-raw', npyBytes('<f4', [4, 8], new Uint8Array(0)), 2 ** 30);
      const y = npyBytes('<i8', [4], new Uint8Array(32));
      const r = await refusedIn('npz-bomb', (d) => ['barrier', a, b, '--data', path.join(d, 'd.npz'), '--steps', '2'], (d) => path.join(d, 'd.npz'), /decompresses to more than the \d+ bytes its header declares/, (d) => {
        fs.writeFileSync(path.join(d, 'd.npz'), zipBytes([
          { name: 'x.npy', stored: xBomb, method: 8, size: 0xfffffff0 },
          { name: 'y.npy', stored: y, method: 0, size: y.length },
        ]));
      });
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
    });

    it('data over --memory-budget is refused from its header, naming the file, the bytes and the budget (barrier, align)', async () => {
      const n = 10_000_000;
      const big = (d: string): string => path.join(d, 'big.safetensors');
      const setup = (d: string): void => {
        rawSafetensors(big(d), { x: { dtype: 'F32', shape: [n, 8], data_offsets: [0, n * 32] }, y: { dtype: 'U8', shape: [n], data_offsets: [n * 32, n * 33] } });
        fs.truncateSync(big(d), fs.statSync(big(d)).size + n * 33);
      };
      const problem = /reading 10000000 images of \[8\] needs [\d.]+ GB, over the memory budget of [\d.]+ MB/;
      // A budget the process's runtime fits in (weight matching counts it: under 64 MB the barrier's
      // alignment is refused first), far below the data's gigabytes.
      const r = await refusedIn('data-budget', (d) => ['barrier', a, b, '--data', big(d), '--steps', '2', '--memory-budget', '400MB'], (d) => `${big(d)}:x`, problem, setup);
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
      await refusedIn('data-budget-align', (d) => ['align', a, b, '--method', 'activation', '--data', big(d), '--out', path.join(d, 'out.safetensors'), '--memory-budget', '400MB'], (d) => `${big(d)}:x`, problem, setup);
    });

    it('an .npz entry declaring far more than its compressed bytes can hold is refused', async () => {
      const x = (await import('node:zlib')).deflateRawSync(npyBytes('<f4', [100000, 1000], new Uint8Array(0)));
      await refusedIn('npz-liar', (d) => ['barrier', a, b, '--data', path.join(d, 'd.npz'), '--steps', '2'], (d) => path.join(d, 'd.npz'), /declares \d+ bytes, more than its \d+ compressed bytes can hold/, (d) => {
        fs.writeFileSync(path.join(d, 'd.npz'), zipBytes([{ name: 'x.npy', stored: x, method: 8, size: 400_000_128 }, { name: 'y.npy', stored: x, method: 8, size: 400_000_128 }]));
      });
    });
  });

  // ---------------------------------------------------------------- 7. safe text output

  describe('safe text output', () => {
    const evil = 'w\u001b[31mRED\r\u202eevil\u0007';
    const evilFile = (): string => f('evil.safetensors');

    before(() => {
      // Written as text: an object literal's `__proto__` would set the prototype, not a key.
      const meta = `${JSON.stringify('k\u001b]0;title\u0007')}:${JSON.stringify('v\r\u202eX')},"__proto__":"kept"`;
      rawSafetensors(evilFile(), `{"__metadata__":{${meta}},${JSON.stringify(evil)}:{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4));
    });

    it('inspect prints names and metadata with control and bidi characters escaped', async () => {
      const r = await runCli(['inspect', evilFile()]);
      assert.equal(r.code, 0, r.stderr);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(r.stdout, /[\u001b\r\u0007\u202e]/);
      assert.match(r.stdout, /w\\u001b\[31mRED\\u000d\\u202eevil\\u0007/);
    });

    it('inspect --json escapes them too, and parses back to the exact name', async () => {
      const r = await runCli(['inspect', evilFile(), '--json']);
      assert.equal(r.code, 0, r.stderr);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(r.stdout, /[\u001b\r\u0007\u202e]/);
      const out = JSON.parse(r.stdout) as { tensors: { name: string }[]; metadata: Record<string, string> };
      assert.equal(out.tensors[0].name, evil);
      assert.equal(out.metadata['k\u001b]0;title\u0007'], 'v\r\u202eX');
    });

    it('an error naming a hostile tensor is one escaped line', async () => {
      const p = f('evil-bad.safetensors');
      rawSafetensors(p, { [evil]: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4));
      const r = await runCli(['inspect', p]);
      assertRefused(r, p, /w\\u001b\[31mRED\\u000d\\u202eevil/);
    });

    it('a 5000-character tensor name is cut in the table', async () => {
      const p = f('long-name.safetensors');
      rawSafetensors(p, { ['n'.repeat(5000)]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, short: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8));
      const r = await runCli(['inspect', p]);
      assert.equal(r.code, 0, r.stderr);
      for (const line of r.stdout.split('\n')) assert.ok(line.length <= 200, `line of ${line.length} characters`);
      assert.match(r.stdout, /n{20,}\.\.\./);
    });

    it('inspect of a 3M-character tensor name stays in bounded memory', async () => {
      const p = f('huge-name.safetensors');
      rawSafetensors(p, { ['x'.repeat(3_000_000)]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
      const r = await runCli(['inspect', p]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length < 10_000, `printed ${r.stdout.length} characters`);
      assert.ok(r.peakMb < 300, `peak ${r.peakMb} MB`);
    });

    it('inspect of 1M tensors works (no call stack overflow) in bounded memory', async () => {
      const p = f('million.safetensors');
      const parts: string[] = [];
      for (let i = 0; i < 1_000_000; i++) parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
      rawSafetensors(p, `{${parts.join(',')}}`);
      // A 59 MB header: parsing it is most of the time (about a minute on a busy 2-core machine).
      const r = await runCli(['inspect', p], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1,000,000 tensors/);
      assert.equal(r.stdout.split('\n').length, 1_000_000 + 7);
      assert.ok(r.peakMb < 1500, `peak ${r.peakMb} MB`);
    });

    it('inspect piped into a reader that closes early exits quietly', async () => {
      const p = f('many.safetensors');
      const parts: string[] = [];
      for (let i = 0; i < 50_000; i++) parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
      rawSafetensors(p, `{${parts.join(',')}}`);
      const r = await runCli(['inspect', p], {
        onSpawn: (child) => child.stdout?.once('data', () => child.stdout?.destroy()),
      });
      assert.equal(r.stderr, '', 'no stack trace');
      assert.equal(r.code, 0);
    });
  });

  // ---------------------------------------------------------------- 8. errors in the user's terms

  describe('errors name the file and the problem', () => {
    it('data whose feature count does not fit the model input is refused naming the data', async () => {
      const p = f('five-features.safetensors');
      const n = 16;
      await writeSafetensors(p, [
        { name: 'x', dtype: 'F32', shape: [n, 5], read: async () => new Uint8Array(n * 5 * 4) },
        { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(n * 8) },
      ]);
      const r = await runCli(['barrier', a, b, '--data', p, '--steps', '2']);
      assertRefused(r, p, /5 features .*8/);
    });

    it('int64 labels of 2^32 + 1 are refused, not read as 1 (.npy)', async () => {
      const d = f('npy-labels');
      fs.mkdirSync(d);
      const n = 4;
      fs.writeFileSync(path.join(d, 'x.npy'), npyBytes('<f4', [n, 8], new Uint8Array(n * 32)));
      const y = new BigInt64Array([0n, 1n, 2n ** 32n + 1n, 2n]);
      fs.writeFileSync(path.join(d, 'y.npy'), npyBytes('<i8', [n], new Uint8Array(y.buffer)));
      const r = await runCli(['barrier', a, b, '--data', path.join(d, 'x.npy'), '--steps', '2']);
      assertRefused(r, 'x.npy', /label 2 is 4294967296/);
    });

    it('int64 labels of 2^32 + 1 are refused, not read as 1 (.safetensors)', async () => {
      const p = f('big-labels.safetensors');
      const n = 4;
      const y = new BigInt64Array([0n, 2n ** 32n + 1n, 1n, 2n]);
      await writeSafetensors(p, [
        { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => new Uint8Array(n * 32) },
        { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
      ]);
      const r = await runCli(['barrier', a, b, '--data', p, '--steps', '2']);
      assertRefused(r, p, /label 1 is 4294967296/);
    });

    it('labels beyond the model outputs are refused naming the data', async () => {
      const p = f('class-9.safetensors');
      const n = 4;
      const y = new BigInt64Array([0n, 9n, 1n, 2n]);
      await writeSafetensors(p, [
        { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => new Uint8Array(n * 32) },
        { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
      ]);
      const r = await runCli(['barrier', a, b, '--data', p, '--steps', '2']);
      assertRefused(r, p, /labels go up to 9 but the model has 3 outputs/);
    });

    it('a truncated .npz is refused as damaged (no DataView offsets)', async () => {
      const p = f('cut.npz');
      const x = npyBytes('<f4', [4, 8], new Uint8Array(128));
      const whole = zipBytes([{ name: 'x.npy', stored: x, method: 0, size: x.length }]);
      // Keep the end record but point the central directory past the end.
      whole.writeUInt32LE(whole.length + 1000, whole.length - 6);
      fs.writeFileSync(p, whole);
      const r = await runCli(['barrier', a, b, '--data', p, '--steps', '2']);
      assertRefused(r, p, /damaged|truncated/);
    });

    it('a truncated .npy header is refused as damaged', async () => {
      const d = f('npy-cut');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'x.npy'), npyBytes('<f4', [4, 8], new Uint8Array(128)).subarray(0, 40));
      fs.writeFileSync(path.join(d, 'y.npy'), npyBytes('<i8', [4], new Uint8Array(32)));
      const r = await runCli(['barrier', a, b, '--data', path.join(d, 'x.npy'), '--steps', '2']);
      assertRefused(r, 'x.npy', /truncated|damaged/);
    });

    it('a data path that does not exist is named', async () => {
      const r = await runCli(['barrier', a, b, '--data', f('nope.npz'), '--steps', '2']);
      assertRefused(r, 'nope.npz', /does not exist/);
    });
  });

  // ---------------------------------------------------------------- 10. every metadata key

  describe('metadata keys', () => {
    it('a `__proto__` metadata key is kept and shown by inspect', async () => {
      const r = await runCli(['inspect', f('evil.safetensors'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /"__proto__":"kept"/);
      const text = await runCli(['inspect', f('evil.safetensors')]);
      assert.match(text.stdout, /__proto__=kept/);
    });
  });
});
