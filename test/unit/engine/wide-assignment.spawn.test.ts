/**
 * A wide assignment through the real worker bundle: a 1-N-1 MLP pair makes one N x N cost of
 * rank 3, whose augmenting paths are long (the degenerate case that ran silently for minutes).
 * The solve must say where it is (rows done) while it runs and stop on Cancel by itself, the
 * worker answering: the grace period is long, so a terminated worker would not pass in time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { EngineClient } from '../../../src/engine/client';
import { EngineError } from '../../../src/engine/errors';
import { randomMlp, tempDir, writeMlp } from '../helpers/engine-fixtures';

const root = path.join(__dirname, '..', '..', '..');
const workerScript = path.join(root, 'dist', 'worker.js');
const tmp = tempDir('rebasin-wide-');
const file = (name: string): string => path.join(tmp.dir, name);
/** Wide enough that the solve takes tens of seconds on a quiet machine (measured: 2000 units, about 8 s). */
const WIDTH = 4000;
/** The time budget: a progress line within it while solving, and the answer within it after Cancel. */
const BUDGET_MS = 2000;
let client: EngineClient;
const logLines: string[] = [];

before(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' });
  assert.ok(existsSync(workerScript), 'the build must produce dist/worker.js');
  await writeMlp(file('a.safetensors'), randomMlp([1, WIDTH, 1], 1));
  await writeMlp(file('b.safetensors'), randomMlp([1, WIDTH, 1], 2));
  client = EngineClient.start({ backend: 'auto', workers: 1, workerScript, cancelGraceMs: 120_000, log: (l) => logLines.push(l) });
});

after(async () => {
  await client?.dispose();
  tmp.cleanup();
});

/** Resolves with `p`'s outcome, or rejects when `ms` pass first. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('a wide assignment in the worker', () => {
  it('reports rows done while it solves and stops on Cancel inside the solve', async () => {
    const controller = new AbortController();
    const rows: string[] = [];
    let nextRow: (() => void) | undefined;
    const pending = client.request(
      { kind: 'align', a: file('a.safetensors'), b: file('b.safetensors'), method: 'weight', seed: 0, maxIter: 5 },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (!/assignment/.test(p.message ?? '')) return;
          rows.push(p.message ?? '');
          nextRow?.();
        },
      },
    );
    const outcome = pending.then(() => 'finished', (e: unknown) => e);
    const rowLine = (): Promise<void> => new Promise<void>((resolve) => { nextRow = resolve; });
    // The first line may take the products and the first passes; after it, lines keep coming.
    await within(rowLine(), 60_000, 'the first assignment progress');
    await within(rowLine(), BUDGET_MS, 'a second assignment progress line');
    assert.match(rows[rows.length - 1], new RegExp(`P_layers\\.0 \\(${WIDTH} units\\): assignment, `), rows.join('\n'));
    assert.ok(rows.some((l) => new RegExp(`[\\d,]+ of ${WIDTH.toLocaleString('en-US')} rows`).test(l)), rows.join('\n'));
    controller.abort();
    const e = await within(outcome, BUDGET_MS, 'the answer to Cancel');
    assert.ok(e instanceof EngineError && e.kind === 'Cancelled', `expected Cancelled, got ${String(e)}`);
    // The worker stopped inside the solve and answered: it was not terminated, and still serves.
    assert.ok(!logLines.some((l) => /terminated|exited/.test(l)), logLines.join('\n'));
    assert.equal((await client.request({ kind: 'backend' })).backend, await client.backend());
  });
});
