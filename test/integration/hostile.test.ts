/**
 * Hostile inputs through the extension (issue 10): the same engine gives the same refusals as
 * the CLI. A FIFO named like a checkpoint is refused at once (it would block a plain read
 * forever), and an output over a shard of a sharded input is refused with the inputs untouched.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint } from '../../src/core/safetensors';
import type { RebasinApi } from '../../src/extension/api';
import { inWorkspace, nextEvent, writeMlp } from './fixtures';

describe('Re-Basin extension: hostile inputs', function () {
  let api: RebasinApi;
  let a: string;
  let b: string;

  before(async function () {
    a = await writeMlp(inWorkspace('hostile', 'a.safetensors'), 11);
    b = await writeMlp(inWorkspace('hostile', 'b.safetensors'), 12);
    const ext = vscode.extensions.getExtension<RebasinApi>('rebasin.rebasin');
    assert.ok(ext);
    api = await ext.activate();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(inWorkspace('hostile'), { recursive: true, force: true });
  });

  it('refuses a FIFO given as a checkpoint at once, in the inspector and in "Align with…"', async function () {
    this.timeout(60_000);
    const fifo = inWorkspace('hostile', 'pipe.safetensors');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const started = Date.now();
    const shown = nextEvent(api.onDidShowInspector, (s) => s.path === fifo, 30_000, 'the inspector of pipe.safetensors');
    await vscode.commands.executeCommand('rebasin.inspectCheckpoint', vscode.Uri.file(fifo));
    const state = await shown;
    assert.match(state.error ?? '', /pipe\.safetensors: checkpoint is not a regular file \(it is a FIFO\)/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');

    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, { reference: vscode.Uri.file(fifo), method: 'weight', replace: true })),
      /pipe\.safetensors: checkpoint is not a regular file \(it is a FIFO\)/,
    );
    assert.ok(Date.now() - started < 30_000, 'no read blocked on the FIFO');
    assert.ok(fs.lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
    assert.ok(!fs.existsSync(inWorkspace('hostile', 'b.aligned.safetensors')), 'nothing written');
  });

  it('refuses an output over a shard of a sharded input, leaving every input unchanged', async function () {
    const shard = inWorkspace('hostile', 'b-00001-of-00001.safetensors');
    fs.copyFileSync(b, shard);
    const ck = await openCheckpoint(b);
    const index = inWorkspace('hostile', 'b.safetensors.index.json');
    fs.writeFileSync(index, JSON.stringify({ weight_map: Object.fromEntries(ck.tensors.map((t) => [t.name, path.basename(shard)])) }));
    await ck.close();
    const before = [a, index, shard].map((p) => fs.readFileSync(p));
    await assert.rejects(
      Promise.resolve(
        vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
          inputs: [vscode.Uri.file(a), vscode.Uri.file(index)],
          reference: vscode.Uri.file(a),
          lambda: 0.5,
          out: vscode.Uri.file(shard),
          replace: true,
          openResult: false,
        }),
      ),
      /b-00001-of-00001\.safetensors: refusing to write over an input/,
    );
    assert.deepEqual([a, index, shard].map((p) => fs.readFileSync(p)), before);
    const left = fs.readdirSync(inWorkspace('hostile')).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(left, []);
  });
});
