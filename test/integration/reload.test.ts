/**
 * A window reload loses nothing silently (issue 19 item 6): an alignment panel comes back from
 * the state its webview kept, else from the run history; a job the reload stopped is recorded in
 * the history as interrupted, and a job that finished leaves no such note. A real reload would end
 * the test run, so the test calls what the serializer and activation call (RebasinApi).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RebasinApi } from '../../src/extension/api';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import { inWorkspace, writeMlp } from './fixtures';

const EXTENSION_ID = 'rebasin.rebasin';

describe('Re-Basin after a window reload', function () {
  let api: RebasinApi;
  let a: string;
  let b: string;

  before(async function () {
    a = await writeMlp(inWorkspace('reload', 'a.safetensors'), 21);
    b = await writeMlp(inWorkspace('reload', 'b.safetensors'), 22);
    const ext = vscode.extensions.getExtension<RebasinApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is installed`);
    api = await ext.activate();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('an alignment panel comes back from its kept state, else from the run history; a state that names no checkpoint is not trusted', async function () {
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
      reference: vscode.Uri.file(a),
      method: 'weight',
      replace: true,
      openPanel: false,
    })) as AlignOutcome;
    // The panel state the webview keeps is the one the history stores (same Float32 codec).
    const kept = fs.readFileSync(path.join(api.historyLocation().fsPath, 'panels', `${outcome.runId}.json`), 'utf8');
    const title = (JSON.parse(kept) as { title: string }).title;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    assert.deepEqual(api.openPanels(), []);

    assert.equal(await api.restorePanel({ ui: { tab: 0, views: {} }, title, data: kept }), title);
    assert.deepEqual(api.openPanels(), [title]);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');

    // Too large for the webview to keep: found in the run history by its title.
    assert.equal(await api.restorePanel({ ui: { tab: 0, views: {} }, title }), title);
    assert.deepEqual(api.openPanels(), [title]);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');

    // A kept state whose "model" is not a checkpoint is not used (the panel opens files named in it).
    const tampered = kept.replace(JSON.stringify(b), JSON.stringify('/etc/passwd'));
    assert.notEqual(tampered, kept);
    assert.equal(await api.restorePanel({ title: 'Re-Basin: nothing like it', data: tampered }), undefined);
    assert.deepEqual(api.openPanels(), [], 'no panel is left open when nothing could be restored');
  });

  it('a job a reload stopped becomes an "interrupted" history entry; a finished job leaves no note', async function () {
    const jobs = path.join(api.historyLocation().fsPath, 'jobs');
    // The alignment above finished: its note is gone.
    assert.deepEqual(fs.existsSync(jobs) ? fs.readdirSync(jobs) : [], []);
    fs.mkdirSync(jobs, { recursive: true });
    // What a window reload leaves: the note of an activation matching under way in a host that is gone.
    const startedAt = Date.now() - 75_000;
    fs.writeFileSync(path.join(jobs, 'left.json'), JSON.stringify({ kind: 'align', aPath: a, bPath: b, method: 'activation', doing: 'aligning', startedAt, pid: 2 ** 30 }));
    const before = api.runs().length;
    assert.equal(await api.recoverInterruptedJobs(), 1);
    assert.equal(api.runs().length, before + 1);
    const run = api.runs()[0];
    assert.equal(run.interrupted, true);
    assert.equal(run.method, 'activation');
    assert.match(run.note ?? '', /^Interrupted by a window reload while aligning \(started .*\); no result was kept\.$/);
    assert.equal(run.outPath, undefined, 'no output is claimed');
    assert.equal(run.barrier, undefined);
    assert.deepEqual(fs.readdirSync(jobs), [], 'the note is consumed');
  });
});
