/**
 * Cancelling an alignment the way a user does: the Cancel button of the progress notification.
 * The test runs the notification's primary action with the workbench command
 * `notification.acceptPrimaryAction` (the newest notification's first action, which for a
 * cancellable `withProgress` is its Cancel), so the path is the user's: Cancel action →
 * CancellationToken → AbortSignal (runSupport.withCancellableProgress) → engine.
 *
 * Named zz-… so it runs last (index.ts runs files in name order): it starts the compute worker,
 * and extension.test.ts checks that activation and inspecting do not.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isCancelled } from '../../src/engine/errors';
import type { RebasinApi } from '../../src/extension/api';
import { inWorkspace, writeMlp } from './fixtures';

const EXTENSION_ID = 'rebasin.rebasin';
/** Wide enough that weight matching runs for seconds (three 1024×1024 assignment problems per sweep). */
const BIG = [784, 1024, 1024, 1024, 10] as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Re-Basin cancellation', function () {
  let api: RebasinApi;
  let dir: string;
  let a: string;
  let b: string;

  before(async function () {
    dir = inWorkspace('cancel');
    a = await writeMlp(path.join(dir, 'big-a.safetensors'), 11, BIG);
    b = await writeMlp(path.join(dir, 'big-b.safetensors'), 12, BIG);
    const ext = vscode.extensions.getExtension<RebasinApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is installed`);
    api = await ext.activate();
  });

  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('cancels an alignment from the progress notification: reports cancelled, leaves no output and no temp file', async function () {
    this.timeout(90_000);
    const runs = api.runs().length;
    // Only the alignment's progress notification should be in the centre when Cancel is run.
    await vscode.commands.executeCommand('notifications.clearAll');

    let settled = false;
    const started = Date.now();
    const running = Promise.resolve(
      vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
        reference: vscode.Uri.file(a),
        method: 'weight',
        replace: true,
        openPanel: false,
      }),
    ).finally(() => {
      settled = true;
    });
    // Let the worker start and the engine get into the solve before cancelling.
    while (!api.engineStarted() && Date.now() - started < 30_000) await sleep(100);
    await sleep(2_000);
    assert.equal(settled, false, 'the alignment was still running when Cancel was pressed (else the pair is too small to test cancelling)');

    const cancelledAt = Date.now();
    await vscode.commands.executeCommand('notification.acceptPrimaryAction');
    let caught: unknown;
    await running.catch((err: unknown) => {
      caught = err;
    });
    const stopSeconds = (Date.now() - cancelledAt) / 1000;
    console.log(`[cancel] ran ${((cancelledAt - started) / 1000).toFixed(1)} s, stopped ${stopSeconds.toFixed(2)} s after Cancel`);

    assert.ok(caught !== undefined, 'the command rejected (automation callers see the failure)');
    // Cancelled, not a failure: reportFailure shows the quiet "cancelled; nothing was written" message for this kind.
    assert.equal(isCancelled(caught), true, `a cancellation, not an error: ${String(caught)}`);
    assert.ok(stopSeconds < 20, `stopped promptly after Cancel (${stopSeconds} s)`);

    const left = fs.readdirSync(dir).sort();
    assert.deepEqual(left, ['big-a.safetensors', 'big-b.safetensors'], 'no aligned output and no temp file beside B');
    assert.equal(api.runs().length, runs, 'no run recorded');
  });
});
