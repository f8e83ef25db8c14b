/**
 * The extension says what happened (issue 19): an alignment the engine refused to write is
 * reported as nothing written, with no history entry claiming an output and no link to a missing
 * file; a Hugging Face checkpoint is named by its folder; data that does not suit the model is
 * refused before anything is replaced; a later run's output marks the earlier run's as replaced;
 * a merge of two Hugging Face folders writes a folder and is evaluated on the data.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint } from '../../src/core/safetensors';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import type { RebasinApi } from '../../src/extension/api';
import type { MergeOutcome } from '../../src/extension/mergeCommand';
import { RunHistory } from '../../src/extension/runHistory';
import { inWorkspace, writeData, writeGpt2, writeMlp, writeTokenIds } from './fixtures';

const quiet = { trace() {}, info() {}, warn() {}, error() {}, show() {} };

describe('Re-Basin extension: says what happened', function () {
  let api: RebasinApi;
  // A GPT-2 folder whose config says one head of width 128, and a bare model.safetensors of the
  // same shapes in a folder without config.json: the equivalence check reads B with GPT-2's
  // head_dim of 64 (two heads), the spec permutes one head's 128 dims freely, so π(B) computes
  // something else and the engine writes nothing.
  let gpt2: string;
  let bare: string;
  let ids: string;

  before(async function () {
    gpt2 = await writeGpt2(inWorkspace('truth', 'gpt2-one-head'), 1, { d: 128, heads: 1 });
    bare = await writeGpt2(inWorkspace('truth', 'bare-gpt2'), 2, { d: 128, config: false });
    ids = writeTokenIds(inWorkspace('truth', 'ids.npy'));
    const ext = vscode.extensions.getExtension<RebasinApi>('rebasin.rebasin');
    assert.ok(ext);
    api = await ext.activate();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(inWorkspace('truth'), { recursive: true, force: true });
  });

  it('reports an alignment the engine did not write as nothing written, why, with no output in the history or the panel', async function () {
    const out = path.join(path.dirname(bare), 'model.aligned.safetensors');
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(bare), undefined, {
      reference: vscode.Uri.file(gpt2),
      method: 'weight',
      replace: true,
      data: null,
    })) as AlignOutcome;
    assert.equal(outcome.result.written, false, 'the engine refused to write');
    assert.equal(outcome.written, false);
    assert.match(outcome.reason ?? '', /^the equivalence check failed on a seeded random batch: π\(B\) computes a different function than B \(largest logit difference [\d.]+/);
    assert.ok(!fs.existsSync(out), 'no aligned file');
    const run = api.runs()[0];
    assert.equal(run.kind, 'align');
    assert.equal(run.outPath, undefined, 'the history claims no output');
    assert.equal(run.out, undefined);
    assert.match(run.note ?? '', /^Nothing written: the equivalence check failed/);
    // Named by their folders, not "model.safetensors → model.safetensors".
    assert.equal(run.a, 'gpt2-one-head');
    assert.equal(run.b, 'bare-gpt2');
    assert.ok(api.openPanels().includes('Re-Basin: bare-gpt2 → gpt2-one-head'), `panels: ${api.openPanels().join(', ')}`);
    const history = await RunHistory.create(api.historyLocation(), quiet);
    try {
      const panel = await history.loadPanel(run.id);
      assert.ok(panel, 'the run keeps its panel');
      assert.equal(panel.out, undefined, 'the panel links no output');
      assert.match(panel.curveNote ?? '', /Nothing written/);
    } finally {
      history.dispose();
    }
  });

  it('writes anyway when asked (keep on mismatch), and a later run into the same output marks the earlier one replaced', async function () {
    const out = path.join(path.dirname(bare), 'model.aligned.safetensors');
    const options = { reference: vscode.Uri.file(gpt2), method: 'weight', replace: true, data: null, keepOnMismatch: true, openPanel: false };
    const first = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(bare), undefined, options)) as AlignOutcome;
    assert.equal(first.written, true);
    assert.ok(fs.existsSync(out));
    const ck = await openCheckpoint(out);
    try {
      assert.equal(ck.metadata['rebasin.align.method'], 'weight');
      assert.equal(ck.metadata.format, 'pt', "B's own metadata is kept");
    } finally {
      await ck.close();
    }
    const second = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(bare), undefined, options)) as AlignOutcome;
    const runs = api.runs();
    assert.equal(runs[0].id, second.runId);
    assert.equal(runs[0].out, 'bare-gpt2/model.aligned.safetensors');
    assert.ok(runs[0].outStamp, 'the output identity is recorded');
    assert.match(runs[0].note ?? '', /^Written as asked although the equivalence check failed/);
    const earlier = runs.find((r) => r.id === first.runId)!;
    assert.equal(earlier.replaced, true, 'the earlier run no longer owns the file');
    assert.equal(runs[0].replaced, undefined);
  });

  it('refuses token ids for a classifier before anything is replaced, with the real cause', async function () {
    const a = await writeMlp(inWorkspace('truth', 'mlp', 'a.safetensors'), 1);
    const b = await writeMlp(inWorkspace('truth', 'mlp', 'b.safetensors'), 2);
    const out = inWorkspace('truth', 'mlp', 'b.aligned.safetensors');
    fs.writeFileSync(out, 'an earlier output');
    const runs = api.runs().length;
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, { reference: vscode.Uri.file(a), method: 'activation', replace: true, data: vscode.Uri.file(ids) })),
      /ids\.npy holds an array without labels beside it \(token ids\), data for a language model, but a\.safetensors is evaluated as a classifier/,
    );
    assert.equal(fs.readFileSync(out, 'utf8'), 'an earlier output', 'the earlier output is untouched');
    assert.equal(api.runs().length, runs, 'no run recorded');
  });

  it('merges two Hugging Face folders into a folder, evaluates the merge on the data, and explains a λ near an end', async function () {
    const other = await writeGpt2(inWorkspace('truth', 'gpt2-one-head-b'), 3, { d: 128, heads: 1 });
    const outcome = (await vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
      inputs: [vscode.Uri.file(gpt2), vscode.Uri.file(other)],
      reference: vscode.Uri.file(gpt2),
      lambda: 0.95,
      replace: true,
      openResult: false,
      data: vscode.Uri.file(ids),
    })) as MergeOutcome;
    assert.equal(outcome.out, inWorkspace('truth', 'gpt2-one-head-merged'));
    assert.ok(fs.statSync(outcome.out).isDirectory(), 'a folder, as the CLI writes for --out DIR');
    // The files written, and the manifest that lets a later merge replace exactly them.
    assert.deepEqual(fs.readdirSync(outcome.out).sort(), ['.rebasin-output.json', 'config.json', 'model.safetensors']);
    assert.match(outcome.quality ?? '', /^loss [\d.e+-]+ \(perplexity [\d.e+-]+\), token accuracy [\d.]+% on ids\.npy; gpt2-one-head: loss [\d.e+-]+ \(perplexity [\d.e+-]+\), token accuracy [\d.]+%; gpt2-one-head-b: loss/);
    assert.match(outcome.endpointNote ?? '', /λ=0\.95 is close to gpt2-one-head-b: the merge is nearly gpt2-one-head-b alone/);
    const run = api.runs()[0];
    assert.equal(run.kind, 'merge');
    assert.equal(run.out, 'gpt2-one-head-merged');
    assert.match(run.note ?? '', /λ=0\.95/);
  });

  it('evaluates a merge of classifiers with their accuracy when data is given', async function () {
    const a = inWorkspace('truth', 'mlp', 'a.safetensors');
    const b = inWorkspace('truth', 'mlp', 'b.safetensors');
    const data = await writeData(inWorkspace('truth', 'eval.safetensors'));
    const outcome = (await vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
      inputs: [vscode.Uri.file(a), vscode.Uri.file(b)],
      reference: vscode.Uri.file(a),
      lambda: 0.5,
      replace: true,
      openResult: false,
      data: vscode.Uri.file(data),
    })) as MergeOutcome;
    assert.equal(outcome.out, inWorkspace('truth', 'mlp', 'a.merged.safetensors'));
    assert.match(outcome.quality ?? '', /^loss [\d.e+-]+, accuracy [\d.]+% on eval\.safetensors; a\.safetensors: loss [\d.e+-]+, accuracy [\d.]+%; b\.safetensors: loss/);
    assert.equal(outcome.endpointNote, undefined);
  });
});
