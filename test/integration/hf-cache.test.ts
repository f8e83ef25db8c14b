// Models in the local Hugging Face cache, in the extension host: the pickers' label names the
// model and its ref, and a merge whose reference is a cached model writes into the workspace,
// never into the cache (src/extension/hfCache.ts). The cache is built as huggingface_hub builds
// it (symlinks into blobs/) in a temp folder named by HF_HUB_CACHE, read at each use.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { MergeOutcome } from '../../src/extension/mergeCommand';
import { cacheLabel, cachedCheckpoints } from '../../src/extension/hfCache';
import { addSnapshot, fakeCommit } from '../unit/helpers/hfCache';
import { inWorkspace, workspaceDir, writeMlp } from './fixtures';

describe('Models in the Hugging Face cache', function () {
  let tmp: string;
  let saved: string | undefined;
  let cached: string;
  let snapshot: string;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-it-hf-'));
    await writeMlp(path.join(tmp, 'download', 'model.safetensors'), 21);
    snapshot = addSnapshot(path.join(tmp, 'hub'), 'org/tiny-mlp', path.join(tmp, 'download'), fakeCommit('tiny-mlp'), ['main']).folder;
    cached = path.join(snapshot, 'model.safetensors');
    saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = path.join(tmp, 'hub');
  });

  after(function () {
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lists the cached model for the pickers, labelled with its name and ref', function () {
    const uris = cachedCheckpoints().map((u) => u.fsPath);
    assert.deepEqual(uris, [cached]);
    assert.equal(cacheLabel(vscode.Uri.file(cached)), 'HF cache · org/tiny-mlp@main');
    assert.equal(cacheLabel(vscode.Uri.file(inWorkspace('models', 'a.safetensors'))), undefined);
  });

  it('merges with a cached reference into the workspace, leaving the cache as it was', async function () {
    const other = await writeMlp(inWorkspace('hf', 'other.safetensors'), 22);
    const before = fs.readdirSync(snapshot).sort();
    const outcome = (await vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
      inputs: [vscode.Uri.file(cached), vscode.Uri.file(other)],
      reference: vscode.Uri.file(cached),
      lambda: 0.5,
      replace: true,
      openResult: false,
    })) as MergeOutcome;
    assert.equal(outcome.out, path.join(workspaceDir(), 'tiny-mlp.merged.safetensors'));
    assert.ok(fs.existsSync(outcome.out));
    assert.deepEqual(fs.readdirSync(snapshot).sort(), before, 'nothing was written into the cache');
    fs.rmSync(outcome.out);
  });
});
