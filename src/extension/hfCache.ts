/**
 * The local Hugging Face cache as the pickers see it: its models' checkpoints (listed after the
 * workspace's), a label naming the model and revision instead of the snapshot folder, and where
 * an output named after a cached checkpoint goes (never into the cache: into the workspace).
 * Read from the extension host's environment (HF_HUB_CACHE, HF_HOME) like huggingface_hub.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { HF_PREFIX, cachedModelOf, hubCacheDir, listCachedModels } from '../core/hf/cache';

function hub(): string {
  return hubCacheDir(process.env, os.homedir());
}

/** The checkpoint (model.safetensors or its shard index) of each cached model snapshot. */
export function cachedCheckpoints(): vscode.Uri[] {
  return listCachedModels(hub()).map((m) => vscode.Uri.file(m.weights));
}

/** "HF cache · org/name@main" for a checkpoint in the cache; undefined for any other. */
export function cacheLabel(uri: vscode.Uri): string | undefined {
  const m = cachedModelOf(uri.fsPath, hub());
  return m && `HF cache · ${m.ref.slice(HF_PREFIX.length)}`;
}

/**
 * The path outputs are named after and written beside: `file` itself, or for a checkpoint in
 * the cache, `<first workspace folder>/<model name>.safetensors`.
 */
export function outputAnchor(file: string): string {
  const m = cachedModelOf(file, hub());
  if (!m) return file;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir();
  return path.join(folder, `${m.repoId.split('/').pop() ?? 'model'}.safetensors`);
}
