/**
 * The extension in a real VS Code extension host: activation, every command (with the
 * automation argument that skips the picks), the written files, the run history and the panels.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint } from '../../src/core/safetensors';
import type { RebasinApi } from '../../src/extension/api';
import type { AlignOutcome } from '../../src/extension/alignCommand';
import type { BarrierOutcome } from '../../src/extension/barrierCommand';
import type { MergeOutcome } from '../../src/extension/mergeCommand';
import { RunHistory } from '../../src/extension/runHistory';
import { WIDTHS, inWorkspace, nextEvent, writeCorrupt, writeData, writeGpt2, writeMlp, writeTokenIds } from './fixtures';
import { BIG_BYTES, SMALL, writeSparseCheckpoint } from '../unit/helpers/sparseCheckpoint';

const EXTENSION_ID = 'rebasin.rebasin';

async function tensors(file: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const ckpt = await openCheckpoint(file);
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const t of ckpt.tensors) out.set(t.name, { shape: [...t.shape], data: await ckpt.readFloat32(t.name) });
    return out;
  } finally {
    await ckpt.close();
  }
}

/** Logits of the fc1..fc3 ReLU MLP for one input (plain JS: the test's own reference). */
function forward(w: Map<string, { shape: number[]; data: Float32Array }>, x: Float32Array): Float32Array {
  let h = x;
  for (let i = 1; i < WIDTHS.length; i++) {
    const W = w.get(`fc${i}.weight`)!;
    const b = w.get(`fc${i}.bias`)!.data;
    const [out, inp] = W.shape;
    const next = new Float32Array(out);
    for (let o = 0; o < out; o++) {
      let s = b[o];
      for (let k = 0; k < inp; k++) s += W.data[o * inp + k] * h[k];
      next[o] = i < WIDTHS.length - 1 ? Math.max(0, s) : s;
    }
    h = next;
  }
  return h;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('Re-Basin extension', function () {
  let api: RebasinApi;
  let a: string;
  let b: string;
  let wide: string;
  let third: string;
  let corrupt: string;
  let data: string;

  before(async function () {
    a = await writeMlp(inWorkspace('models', 'a.safetensors'), 1);
    b = await writeMlp(inWorkspace('models', 'b.safetensors'), 2);
    third = await writeMlp(inWorkspace('models', 'c.safetensors'), 4);
    wide = await writeMlp(inWorkspace('models', 'wide.safetensors'), 3, [8, 48, 32, 4]);
    corrupt = writeCorrupt(inWorkspace('models', 'broken.safetensors'));
    data = await writeData(inWorkspace('data', 'eval.safetensors'));
    const ext = vscode.extensions.getExtension<RebasinApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is installed`);
    api = await ext.activate();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('activates without starting the compute worker and registers every command', async function () {
    assert.equal(api.engineStarted(), false);
    const all = await vscode.commands.getCommands(true);
    for (const id of ['alignWith', 'mergeCheckpoints', 'computeBarrier', 'computeBarrierWith', 'inspectCheckpoint', 'showBackend', 'clearRunHistory']) {
      assert.ok(all.includes(`rebasin.${id}`), `rebasin.${id} is registered`);
    }
  });

  it('offers the explorer entries only on checkpoints, and the writing ones only when trusted', function () {
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as {
      contributes: { menus: Record<string, { command: string; when?: string }[]> };
    };
    const explorer = pkg.contributes.menus['explorer/context'];
    assert.deepEqual(explorer.map((m) => m.command).sort(), ['rebasin.alignWith', 'rebasin.compareWith', 'rebasin.computeBarrierWith', 'rebasin.convertToSafetensors', 'rebasin.inspectCheckpoint']);
    // Checkpoints: safetensors and the PyTorch / Flax files (convert: those only), and index JSON files.
    for (const m of explorer) assert.match(m.when ?? '', /resourceExtname =~ \/\^\\\.\((safetensors\|)?pt\|pth\|bin\|ckpt\|msgpack\)\$\//);
    for (const m of explorer.filter((x) => x.command !== 'rebasin.convertToSafetensors')) assert.match(m.when ?? '', /resourceFilename =~ \/\\\.index\\\.json\$\//);
    for (const m of explorer.filter((x) => x.command !== 'rebasin.inspectCheckpoint' && x.command !== 'rebasin.convertToSafetensors' && x.command !== 'rebasin.compareWith')) assert.match(m.when ?? '', /isWorkspaceTrusted/);
  });

  it('opens a checkpoint in the inspector from its header alone', async function () {
    const shown = nextEvent(api.onDidShowInspector, (s) => s.path === a, 60_000, 'the inspector of a.safetensors');
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(a), 'rebasin.inspector');
    const state = await shown;
    assert.equal(state.error, undefined);
    assert.equal(state.tensors.length, 6);
    assert.equal(state.totalParams, 8 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4);
    assert.ok(state.architecture, 'the MLP architecture is recognised');
    assert.deepEqual(Object.values(state.architecture.perms).sort((x, y) => x - y), [32, 32]);
    assert.equal(api.engineStarted(), false, 'inspecting a header does not start the worker');
  });

  it('opens a 10 GB checkpoint in the inspector at once (header only)', async function () {
    const huge = inWorkspace('big', 'huge.safetensors');
    writeSparseCheckpoint(huge);
    try {
      const started = Date.now();
      const shown = nextEvent(api.onDidShowInspector, (s) => s.path === huge, 30_000, 'the inspector of huge.safetensors');
      await vscode.commands.executeCommand('rebasin.inspectCheckpoint', vscode.Uri.file(huge));
      const state = await shown;
      const ms = Date.now() - started;
      assert.equal(state.error, undefined);
      assert.equal(state.totalBytes, BIG_BYTES + SMALL.byteLength);
      assert.ok(ms < 10_000, `shown after ${ms} ms`);
      console.log(`      10 GB checkpoint shown in the inspector after ${ms} ms`);
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
      fs.rmSync(path.dirname(huge), { recursive: true, force: true });
    }
  });

  it('aligns B to A, writes a permuted copy beside B that computes the same function, and opens the panel', async function () {
    const outcome = (await vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
      reference: vscode.Uri.file(a),
      method: 'weight',
      replace: true,
    })) as AlignOutcome;
    const out = path.join(path.dirname(b), 'b.aligned.safetensors');
    assert.equal(outcome.out, out);
    assert.ok(fs.existsSync(out), 'b.aligned.safetensors exists');
    assert.ok(outcome.result.objectiveAfter >= outcome.result.objectiveBefore, 'weight matching does not lower the objective');
    assert.ok(outcome.result.groups.some((g) => g.moved > 0), 'some units moved');
    // Maximising <A, π(B)> with fixed norms minimises ‖A − π(B)‖: the panel's distance plot data.
    const d = outcome.result.distance;
    assert.ok(d && d.aligned < d.naive, `distance naive ${d?.naive} aligned ${d?.aligned}`);

    const tb = await tensors(b);
    const ta = await tensors(out);
    assert.deepEqual([...ta.keys()], [...tb.keys()]);
    assert.notDeepEqual(ta.get('fc1.weight')!.data, tb.get('fc1.weight')!.data, 'hidden units were permuted');
    // Permuting hidden units leaves the network's function unchanged (paper §2).
    const x = new Float32Array(WIDTHS[0]).map((_, i) => Math.sin(i + 1));
    assert.ok(maxAbsDiff(forward(ta, x), forward(tb, x)) < 1e-4, 'aligned B computes what B computes');
    // Every row of the aligned first layer is a row of B's.
    const rows = (t: { data: Float32Array }) => Array.from({ length: 32 }, (_, r) => Array.from(t.data.subarray(r * 8, r * 8 + 8)).join(','));
    assert.deepEqual(rows(ta.get('fc1.weight')!).sort(), rows(tb.get('fc1.weight')!).sort());

    assert.ok(api.openPanels().some((t) => t.includes('b.safetensors')), `panel open: ${api.openPanels().join(', ')}`);
    const run = api.runs()[0];
    assert.equal(run.kind, 'align');
    assert.equal(run.outPath, out);
    assert.equal(api.engineStarted(), true);
  });

  it('refuses to write the aligned copy over an input and leaves the input untouched', async function () {
    const before = fs.readFileSync(a);
    await assert.rejects(
      Promise.resolve(
        vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, {
          reference: vscode.Uri.file(a),
          method: 'weight',
          out: vscode.Uri.file(a),
          replace: true,
        }),
      ),
      /a\.safetensors/,
    );
    assert.deepEqual(fs.readFileSync(a), before);
  });

  it('rejects an incompatible reference from the headers, naming the tensor', async function () {
    await assert.rejects(
      Promise.resolve(
        vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(b), undefined, { reference: vscode.Uri.file(wide), method: 'weight' }),
      ),
      /fc1\.(weight|bias)/,
    );
    assert.ok(!fs.existsSync(inWorkspace('models', 'b.aligned.safetensors.tmp')));
  });

  it('reports a corrupt checkpoint by name and writes nothing', async function () {
    const runs = api.runs().length;
    await assert.rejects(
      Promise.resolve(
        vscode.commands.executeCommand('rebasin.alignWith', vscode.Uri.file(corrupt), undefined, { reference: vscode.Uri.file(a), method: 'weight' }),
      ),
      /broken\.safetensors/,
    );
    const left = fs.readdirSync(path.dirname(corrupt)).filter((f) => f.startsWith('broken') || f.startsWith('.broken'));
    assert.deepEqual(left, ['broken.safetensors']);
    assert.equal(api.runs().length, runs, 'no run recorded');
  });

  it('merges two checkpoints beside the reference', async function () {
    const outcome = (await vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
      inputs: [vscode.Uri.file(a), vscode.Uri.file(b)],
      reference: vscode.Uri.file(a),
      lambda: 0.5,
      replace: true,
      openResult: false,
    })) as MergeOutcome;
    const out = path.join(path.dirname(a), 'a.merged.safetensors');
    assert.equal(outcome.out, out);
    const tm = await tensors(out);
    const tA = await tensors(a);
    const tB = await tensors(b);
    // The output layer's units are not permuted: its bias is the plain average.
    const bias = tm.get('fc3.bias')!.data;
    for (let i = 0; i < bias.length; i++) assert.ok(Math.abs(bias[i] - 0.5 * (tA.get('fc3.bias')!.data[i] + tB.get('fc3.bias')!.data[i])) < 1e-5);
    assert.equal(api.runs()[0].kind, 'merge');
  });

  it('merges three checkpoints with MergeMany', async function () {
    const outcome = (await vscode.commands.executeCommand('rebasin.mergeCheckpoints', {
      inputs: [vscode.Uri.file(a), vscode.Uri.file(b), vscode.Uri.file(third)],
      reference: vscode.Uri.file(b),
      replace: true,
      openResult: false,
    })) as MergeOutcome;
    assert.equal(outcome.out, path.join(path.dirname(b), 'b.merged.safetensors'));
    assert.equal(outcome.result.method, 'mergemany');
    assert.deepEqual(outcome.result.inputs, [b, a, third]);
    const tm = await tensors(outcome.out);
    assert.deepEqual(tm.get('fc2.weight')!.shape, [32, 32]);
    assert.equal(api.runs()[0].others?.length, 1);
  });

  it('computes a loss barrier on a data set and opens the panel with the curve', async function () {
    const outcome = (await vscode.commands.executeCommand('rebasin.computeBarrier', {
      a: vscode.Uri.file(a),
      b: vscode.Uri.file(b),
      data: vscode.Uri.file(data),
    })) as BarrierOutcome;
    const steps = vscode.workspace.getConfiguration('rebasin').get<number>('lambdaSteps');
    assert.equal(outcome.result.lambdas.length, steps);
    assert.equal(outcome.result.naive.loss.length, steps);
    assert.ok(outcome.result.aligned, 'aligned path computed');
    assert.ok(Number.isFinite(outcome.result.barrier.naive));
    const run = api.runs()[0];
    assert.equal(run.kind, 'barrier');
    assert.ok(run.curve);
    assert.ok(api.openPanels().some((t) => t.includes('barrier')), `panel open: ${api.openPanels().join(', ')}`);
  });

  it('computes a language-model barrier of two GPT-2 folders on token ids, with perplexity', async function () {
    const ga = await writeGpt2(inWorkspace('lm', 'gpt2-a'), 1);
    const gb = await writeGpt2(inWorkspace('lm', 'gpt2-b'), 2);
    const ids = writeTokenIds(inWorkspace('lm', 'ids.npy'));
    const outcome = (await vscode.commands.executeCommand('rebasin.computeBarrier', {
      a: vscode.Uri.file(ga),
      b: vscode.Uri.file(gb),
      data: vscode.Uri.file(ids),
      openPanel: false,
    })) as BarrierOutcome;
    const r = outcome.result;
    assert.equal(r.lm?.objective, 'causal');
    assert.equal(r.lm?.positions, 6 * 7);
    assert.ok(r.aligned, 'aligned path computed');
    assert.equal(r.naive.perplexity?.length, r.lambdas.length);
    r.naive.perplexity!.forEach((p, i) => assert.ok(Math.abs(p - Math.exp(r.naive.loss[i])) <= 1e-6 * p));
    assert.ok(api.runs()[0].curve?.naive.perplexity, 'the recorded curve carries perplexity');
  });

  it('keeps every run in the history, and clears it', async function () {
    const kinds = api.runs().map((r) => r.kind);
    assert.ok(kinds.includes('align') && kinds.includes('merge'), `runs: ${kinds.join(', ')}`);
    assert.ok(kinds.filter((k) => k === 'merge').length === 2, 'both merges recorded');
    assert.ok(kinds.indexOf('merge') < kinds.indexOf('align'), 'newest first');
    assert.ok(api.runs().every((r) => path.isAbsolute(r.aPath) && path.isAbsolute(r.bPath)));
    // What a reload would load: a fresh history over the same storage sees the same runs and panels.
    const quiet = { trace() {}, info() {}, warn() {}, error() {}, show() {} };
    const reloaded = await RunHistory.create(api.historyLocation(), quiet);
    assert.deepEqual(reloaded.list().map((r) => r.id), api.runs().map((r) => r.id));
    const alignRun = reloaded.list().find((r) => r.kind === 'align')!;
    const panel = await reloaded.loadPanel(alignRun.id);
    assert.ok(panel && panel.heatmaps.length === 2, 'the align panel reopens with its heatmaps');
    assert.ok(panel.heatmaps[0].after instanceof Float32Array && panel.heatmaps[0].after.length === 32 * 32);
    reloaded.dispose();
    const cleared = await vscode.commands.executeCommand('rebasin.clearRunHistory', { skipConfirmation: true });
    assert.equal(cleared, true);
    assert.equal(api.runs().length, 0);
  });

  it('shows the compute backend', async function () {
    const backend = await vscode.commands.executeCommand('rebasin.showBackend');
    assert.ok(['tensorflow', 'wasm', 'cpu'].includes(String(backend)), `backend ${String(backend)}`);
  });
});
