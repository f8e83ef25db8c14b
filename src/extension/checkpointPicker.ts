/**
 * Finding and choosing checkpoints: the workspace's `.safetensors` files, sharded index files and
 * PyTorch / Flax checkpoints (`.pt`, `.pth`, `.ckpt`, `.msgpack`, `pytorch_model.bin`),
 * checked for compatibility with a given checkpoint from their headers alone (same tensor names
 * and shapes), compatible ones first. Incompatible ones stay visible with the reason; picking one
 * explains instead of closing. "Browse…" opens a file dialog for checkpoints outside the workspace.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointName } from '../core/checkpointName';
import type { TensorInfo } from '../core/checkpoint';
import { dataFileProblem, isDataFile } from '../core/data';
import { openCheckpoint } from '../core/safetensors';
import { checkCompatible } from '../core/permspec';
import { cacheLabel, cachedCheckpoints } from './hfCache';
import { selectionProblem } from './layoutSelection';
import { errorMessage } from './log';

export interface Candidate {
  readonly uri: vscode.Uri;
  /** Why it cannot be used with the target, when it cannot. */
  readonly problem?: string;
  readonly tensors?: number;
  readonly params?: number;
  /** Written by Re-Basin (an aligned or merged file): listed after the original models. */
  readonly output?: boolean;
  /** Evaluation data or recorded outputs, not a model (`reference_logits.safetensors`): not listed. */
  readonly data?: boolean;
}

/** Our own outputs: the default names, or `rebasin.*` provenance in the header's metadata. */
export function isRebasinOutput(file: string, metadata: Readonly<Record<string, string>> = {}): boolean {
  return /\.(aligned|merged)\.safetensors$/i.test(file) || metadata['rebasin.tool'] !== undefined || metadata['rebasin.method'] !== undefined || metadata['rebasin.align.method'] !== undefined;
}

/** Tensor list and metadata of a checkpoint (header only). */
async function readHeader(file: string): Promise<{ tensors: readonly TensorInfo[]; metadata: Readonly<Record<string, string>> }> {
  const ckpt = await openCheckpoint(file);
  try {
    return { tensors: ckpt.tensors, metadata: ckpt.metadata };
  } finally {
    await ckpt.close();
  }
}

/** Shards of a sharded checkpoint are only usable through their index. */
const SHARD = /-\d{5}-of-\d{5}\.safetensors$/;
const MAX_FILES = 500;

/** Every checkpoint of the workspace (single files and sharded index files) sorted by path, then the Hugging Face cache's. */
export async function findCheckpoints(): Promise<vscode.Uri[]> {
  const exclude = '{**/node_modules/**,**/.git/**}';
  const [files, indexes, others] = await Promise.all([
    vscode.workspace.findFiles('**/*.safetensors', exclude, MAX_FILES),
    vscode.workspace.findFiles('**/*.{safetensors,bin}.index.json', exclude, MAX_FILES),
    vscode.workspace.findFiles('**/{*.pt,*.pth,*.ckpt,*.msgpack,pytorch_model.bin}', exclude, MAX_FILES),
  ]);
  const workspace = [...files.filter((u) => !SHARD.test(u.fsPath)), ...indexes, ...others].sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  return [...workspace, ...cachedCheckpoints()];
}

/** Tensor names and shapes of a checkpoint (header only); throws the reader's error naming the file. */
export async function readTensorList(file: string): Promise<readonly TensorInfo[]> {
  const ckpt = await openCheckpoint(file);
  try {
    return ckpt.tensors;
  } finally {
    await ckpt.close();
  }
}

/**
 * Checks each candidate against the target's tensor list. Compatible ones first and, among
 * them, original models before Re-Basin's own outputs (an earlier aligned file is B up to a
 * permutation of some other model: rarely the reference meant).
 */
export async function checkCandidates(target: string, targetTensors: readonly TensorInfo[], uris: readonly vscode.Uri[]): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const uri of uris) {
    try {
      const { tensors, metadata } = await readHeader(uri.fsPath);
      const names = tensors.map((t) => t.name);
      if (isDataFile(names)) {
        out.push({ uri, problem: dataFileProblem(names), data: true });
        continue;
      }
      const problem = checkCompatible(tensors, targetTensors, checkpointName(uri.fsPath), checkpointName(target));
      const params = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      out.push({ uri, problem: problem?.message, tensors: tensors.length, params, output: isRebasinOutput(uri.fsPath, metadata) });
    } catch (err) {
      out.push({ uri, problem: errorMessage(err) });
    }
  }
  const rank = (c: Candidate): number => (c.problem !== undefined ? 2 : c.output ? 1 : 0);
  return out.sort((a, b) => rank(a) - rank(b));
}

interface CandidateItem extends vscode.QuickPickItem {
  readonly candidate?: Candidate;
  readonly browse?: true;
}

/** The folder a checkpoint is in, relative to the workspace ('' at the top; folder name only in multi-root). */
export function folderLabel(uri: vscode.Uri): string {
  const cached = cacheLabel(uri);
  if (cached) return cached;
  const dir = path.dirname(vscode.workspace.asRelativePath(uri));
  return dir === '.' ? '' : dir;
}

/**
 * A pick row's description: the folder, or, for a checkpoint named by its model folder, its
 * path in the workspace (so the file name shows and typing either the folder or the file matches).
 */
export function pickDescription(uri: vscode.Uri): string {
  return checkpointName(uri.fsPath) === path.basename(uri.fsPath) ? folderLabel(uri) : vscode.workspace.asRelativePath(uri);
}

/**
 * Quick pick of checkpoints compatible with `target`. Resolves to the chosen URI, or undefined
 * when the user dismisses it.
 */
export async function pickCompatible(target: vscode.Uri, title: string, exclude: readonly vscode.Uri[] = []): Promise<vscode.Uri | undefined> {
  const targetTensors = await readTensorList(target.fsPath);
  const excluded = new Set([target.fsPath, ...exclude.map((u) => u.fsPath)]);
  const qp = vscode.window.createQuickPick<CandidateItem>();
  qp.title = title;
  qp.placeholder = 'Checking checkpoints in the workspace…';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.busy = true;
  qp.ignoreFocusOut = true;
  qp.show();
  const uris = (await findCheckpoints()).filter((u) => !excluded.has(u.fsPath));
  const candidates = await checkCandidates(target.fsPath, targetTensors, uris);
  qp.items = candidateItems(candidates);
  qp.busy = false;
  qp.placeholder = candidates.some((c) => !c.problem)
    ? `Pick the checkpoint to align ${checkpointName(target.fsPath)} with`
    : 'No compatible checkpoint in the workspace: Browse… for one';
  return new Promise<vscode.Uri | undefined>((resolve) => {
    let done = false;
    const finish = (value: vscode.Uri | undefined): void => {
      if (done) return;
      done = true;
      resolve(value);
      qp.dispose();
    };
    qp.onDidHide(() => finish(undefined));
    qp.onDidAccept(async () => {
      const item = qp.selectedItems[0];
      if (!item) return;
      if (item.browse) {
        const picked = await browseCheckpoint(title);
        if (!picked) return;
        if (excluded.has(picked.fsPath)) {
          void vscode.window.showWarningMessage(`Re-Basin: ${checkpointName(picked.fsPath)} is the checkpoint being aligned; pick another one.`);
          return;
        }
        const [checked] = await checkCandidates(target.fsPath, targetTensors, [picked]);
        if (checked?.problem) {
          void vscode.window.showWarningMessage(`Re-Basin: cannot use ${checkpointName(picked.fsPath)}: ${checked.problem}`);
          return;
        }
        finish(picked);
        return;
      }
      if (item.candidate?.problem) {
        // Keep the pick open: the user learns why and can choose another.
        void vscode.window.showWarningMessage(`Re-Basin: cannot use ${checkpointName(item.candidate.uri.fsPath)}: ${item.candidate.problem}`);
        qp.title = `${title}: ${checkpointName(item.candidate.uri.fsPath)} is incompatible`;
        return;
      }
      if (item.candidate) finish(item.candidate.uri);
    });
  });
}

function candidateItems(candidates: readonly Candidate[]): CandidateItem[] {
  const items: CandidateItem[] = [];
  const good = candidates.filter((c) => !c.problem);
  // Data files are not models: not offered at all (Browse… still says why one cannot be used).
  const bad = candidates.filter((c) => c.problem && !c.data);
  if (good.length) items.push({ label: 'Compatible', kind: vscode.QuickPickItemKind.Separator });
  for (const c of good) {
    items.push({
      label: `$(file-binary) ${checkpointName(c.uri.fsPath)}`,
      description: pickDescription(c.uri),
      detail: `${c.tensors} tensors, ${formatCount(c.params ?? 0)} parameters${c.output ? ' · an earlier Re-Basin output' : ''}`,
      candidate: c,
    });
  }
  if (bad.length) items.push({ label: 'Incompatible', kind: vscode.QuickPickItemKind.Separator });
  for (const c of bad) {
    items.push({
      label: `$(circle-slash) ${checkpointName(c.uri.fsPath)}`,
      description: pickDescription(c.uri),
      detail: c.problem,
      candidate: c,
    });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(folder-opened) Browse…', detail: 'Choose a checkpoint file anywhere', browse: true, alwaysShow: true });
  return items;
}

export async function browseCheckpoint(title: string): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title,
    canSelectMany: false,
    openLabel: 'Use checkpoint',
    filters: { 'Checkpoints': ['safetensors', 'json'] },
  });
  return picked?.[0];
}

/** Tensor names and shapes: checkpoints with the same key can be aligned and merged together. */
function layoutKey(tensors: readonly TensorInfo[]): string {
  return tensors.map((t) => `${t.name}:${t.shape.join('x')}`).sort().join('|');
}

export interface LayoutHint {
  readonly uri: vscode.Uri;
  /** "12 tensors, 1.2 M parameters · same layout as 2 others" or why it cannot be read. */
  readonly detail: string;
  /** Index of its layout among the readable ones (same index: compatible), -1 when unreadable. */
  readonly layout: number;
  readonly output: boolean;
}

/**
 * Compatibility hints for a multi-select (merge), from the headers alone: which checkpoints share
 * a layout (tensor names and shapes), the size of each, and which cannot be read. Sorted so
 * that compatible checkpoints sit together, the biggest group first, outputs after originals.
 */
export async function layoutHints(uris: readonly vscode.Uri[]): Promise<LayoutHint[]> {
  const read: { uri: vscode.Uri; key?: string; tensors?: number; params?: number; output: boolean; problem?: string }[] = [];
  for (const uri of uris) {
    try {
      const { tensors, metadata } = await readHeader(uri.fsPath);
      // Data files (x/y, token ids, recorded logits) are not models: not offered for a merge.
      if (isDataFile(tensors.map((t) => t.name))) continue;
      const params = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      read.push({ uri, key: layoutKey(tensors), tensors: tensors.length, params, output: isRebasinOutput(uri.fsPath, metadata) });
    } catch (err) {
      read.push({ uri, output: false, problem: errorMessage(err) });
    }
  }
  const sizes = new Map<string, number>();
  for (const r of read) if (r.key !== undefined) sizes.set(r.key, (sizes.get(r.key) ?? 0) + 1);
  const order = [...sizes.entries()].sort((x, y) => y[1] - x[1]).map(([k]) => k);
  const hints = read.map((r): LayoutHint => {
    if (r.key === undefined) return { uri: r.uri, detail: `cannot be merged: ${r.problem ?? 'unreadable'}`, layout: -1, output: false };
    const others = (sizes.get(r.key) ?? 1) - 1;
    const same = others === 0 ? 'no other checkpoint has its tensor names and shapes' : `same tensor names and shapes as ${others} other${others === 1 ? '' : 's'}`;
    return {
      uri: r.uri,
      detail: `${r.tensors} tensors, ${formatCount(r.params ?? 0)} parameters · ${same}${r.output ? ' · an earlier Re-Basin output' : ''}`,
      layout: order.indexOf(r.key),
      output: r.output,
    };
  });
  const rank = (h: LayoutHint): number => (h.layout < 0 ? Number.MAX_SAFE_INTEGER : h.layout * 2 + (h.output ? 1 : 0));
  return hints.sort((x, y) => rank(x) - rank(y) || x.uri.fsPath.localeCompare(y.uri.fsPath));
}

/** Multi-select of workspace checkpoints (merge), with compatibility hints from the headers. */
export async function pickMany(title: string, minimum: number): Promise<vscode.Uri[] | undefined> {
  const uris = await findCheckpoints();
  if (uris.length < minimum) {
    void vscode.window.showWarningMessage(`Re-Basin: ${title} needs at least ${minimum} checkpoints in the workspace; found ${uris.length}.`);
    return undefined;
  }
  const hints = await layoutHints(uris);
  type Item = vscode.QuickPickItem & { uri?: vscode.Uri; layout?: number };
  const items: Item[] = [];
  let layout: number | undefined;
  for (const hint of hints) {
    if (hint.layout !== layout) {
      layout = hint.layout;
      const count = hints.filter((x) => x.layout === hint.layout).length;
      items.push({ label: hint.layout < 0 ? 'Unreadable' : count === 1 ? `Layout ${hint.layout + 1}` : `Layout ${hint.layout + 1}: ${count} compatible`, kind: vscode.QuickPickItemKind.Separator });
    }
    items.push({
      label: `${hint.layout < 0 ? '$(circle-slash)' : '$(file-binary)'} ${checkpointName(hint.uri.fsPath)}`,
      description: pickDescription(hint.uri),
      detail: hint.detail,
      uri: hint.uri,
      layout: hint.layout,
    });
  }
  const picked = await pickSameLayout(items, title, minimum);
  if (!picked) return undefined;
  const chosen = picked.filter((p): p is Item & { uri: vscode.Uri } => p.uri !== undefined);
  if (chosen.length < minimum) {
    void vscode.window.showWarningMessage(`Re-Basin: select at least ${minimum} checkpoints.`);
    return undefined;
  }
  return chosen.map((p) => p.uri);
}

/**
 * A multi-select that checks the selection as it is made: ticking checkpoints of another layout
 * (or an unreadable one) says so at once in the title, and accepting such a selection keeps the
 * pick open with the reason instead of failing later.
 */
async function pickSameLayout<T extends vscode.QuickPickItem & { uri?: vscode.Uri; layout?: number }>(items: readonly T[], title: string, minimum: number): Promise<readonly T[] | undefined> {
  const qp = vscode.window.createQuickPick<T>();
  qp.title = title;
  qp.canSelectMany = true;
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.ignoreFocusOut = true;
  qp.placeholder = `Select ${minimum} or more checkpoints with the same tensor names and shapes (one layout)`;
  qp.items = items;
  const problem = (selected: readonly T[]): string | undefined =>
    selectionProblem(selected.filter((s) => s.uri).map((s) => ({ name: checkpointName(s.uri!.fsPath), layout: s.layout ?? -1 })));
  qp.onDidChangeSelection((selected) => {
    const p = problem(selected);
    qp.title = p ? `${title}: ${p}` : title;
  });
  qp.show();
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: readonly T[] | undefined): void => {
      if (done) return;
      done = true;
      resolve(value);
      qp.dispose();
    };
    qp.onDidHide(() => finish(undefined));
    qp.onDidAccept(() => {
      const p = problem(qp.selectedItems);
      if (p) {
        void vscode.window.showWarningMessage(`Re-Basin: cannot merge: ${p}.`);
        return;
      }
      finish([...qp.selectedItems]);
    });
  });
}

/** True when the file's header holds only data tensors (x/y, token ids, recorded logits); false when unreadable. */
async function holdsData(uri: vscode.Uri): Promise<boolean> {
  try {
    return isDataFile((await readHeader(uri.fsPath)).tensors.map((t) => t.name));
  } catch {
    return false;
  }
}

/**
 * Single pick of any workspace checkpoint; `modelsOnly` leaves out data files (a model to run,
 * not one to inspect).
 */
export async function pickOne(title: string, placeHolder: string, modelsOnly = false): Promise<vscode.Uri | undefined> {
  const uris: vscode.Uri[] = [];
  // One header at a time (up to 500 files: no burst of open handles).
  for (const u of await findCheckpoints()) if (!modelsOnly || !(await holdsData(u))) uris.push(u);
  const items: (vscode.QuickPickItem & { uri?: vscode.Uri })[] = uris.map((uri) => ({
    label: checkpointName(uri.fsPath),
    description: pickDescription(uri),
    uri,
  }));
  items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder, ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true });
  if (!picked) return undefined;
  return picked.uri ?? (await browseCheckpoint(title));
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}
