/**
 * Typed access to the `rebasin.*` settings (declared in package.json `contributes.configuration`).
 * Read fresh on every use so a change applies to the next run without a reload.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { MAX_ITER, SEED } from '../core/methods';
import type { BackendChoice } from '../engine/protocol';
import { locateCheckpoint } from '../core/hf/layout';
import { parseByteSize } from '../core/memoryBudget';
import { outputAnchor } from './hfCache';

export interface Settings {
  readonly backend: BackendChoice;
  readonly lambdaSteps: number;
  readonly seed: number;
  readonly maxIterations: number;
  readonly outputNaming: string;
  /** Absolute path, or undefined when unset. */
  readonly evaluationData?: string;
  /** Absolute path, or undefined when unset. */
  readonly modelConfig?: string;
  /** tokenizer.json for raw-text evaluation data of language models; undefined: the one beside the checkpoint. */
  readonly tokenizer?: string;
  /** Tokens per sequence cut from raw text; undefined: the model's maximum position (at most 512). */
  readonly sequenceLength?: number;
  readonly resetBatchNorm: boolean;
  /** Worker threads; undefined means one per core (the engine's default). */
  readonly workers?: number;
  /** Folder of a @tensorflow/tfjs-node package for the native backend; undefined: none configured. */
  readonly nativeBackendPath?: string;
  /** Bytes for weight matching (`8GB`, `512MiB`); undefined means half of physical memory (the engine's default). */
  readonly memoryBudget?: number;
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export function readSettings(scope?: vscode.Uri): Settings {
  const c = vscode.workspace.getConfiguration('rebasin', scope);
  const backend = c.get<string>('backend', 'auto');
  return {
    backend: (BACKENDS as readonly string[]).includes(backend) ? (backend as BackendChoice) : 'auto',
    lambdaSteps: clampInt(c.get<number>('lambdaSteps', 25), 2, 201, 25),
    seed: clampInt(c.get<number>('seed', SEED.default), SEED.min, SEED.max!, SEED.default),
    maxIterations: clampInt(c.get<number>('maxIterations', MAX_ITER.default), MAX_ITER.min, 100000, MAX_ITER.default),
    outputNaming: validNaming(c.get<string>('outputNaming', '')),
    evaluationData: resolvePath(c.get<string>('evaluationData', ''), scope),
    modelConfig: resolvePath(c.get<string>('modelConfig', ''), scope),
    tokenizer: resolvePath(c.get<string>('tokenizer', ''), scope),
    sequenceLength: clampInt(c.get<number>('sequenceLength', 0), 0, 1 << 20, 0) || undefined,
    resetBatchNorm: c.get<boolean>('resetBatchNorm', false) === true,
    workers: clampInt(c.get<number>('workers', 0), 0, 64, 0) || undefined,
    memoryBudget: parseByteSize(c.get<string>('memoryBudget', '') ?? '') ?? undefined,
    nativeBackendPath: resolvePath(c.get<string>('nativeBackendPath', ''), scope),
  };
}

function clampInt(value: unknown, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

const DEFAULT_NAMING = '${name}.aligned.safetensors';

/** The naming pattern must stay a plain file name ending in .safetensors, with ${name} in it. */
function validNaming(value: string | undefined): string {
  if (!value || !value.includes('${name}') || !value.endsWith('.safetensors')) return DEFAULT_NAMING;
  if (/[\\/]/.test(value.replace(/\$\{name\}/g, ''))) return DEFAULT_NAMING;
  return value;
}

/** `~`, workspace-relative and absolute paths; `${workspaceFolder}` too. */
function resolvePath(value: string | undefined, scope?: vscode.Uri): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  let p = trimmed.replace(/\$\{workspaceFolder\}/g, folder?.uri.fsPath ?? '');
  if (p.startsWith('~/')) p = path.join(process.env.HOME ?? '', p.slice(2));
  if (!path.isAbsolute(p) && folder) p = path.join(folder.uri.fsPath, p);
  return path.normalize(p);
}

/** Strips `.safetensors`, `.safetensors.index.json` or a PyTorch / Flax extension from a checkpoint file name. */
export function checkpointStem(file: string): string {
  const base = path.basename(file);
  return base.replace(/\.safetensors\.index\.json$/i, '').replace(/\.(safetensors|pt|pth|bin|ckpt|msgpack)$/i, '');
}

/** Where the aligned copy of `b` goes: beside it, named by the `outputNaming` pattern. */
export function alignedOutputPath(b: string, naming: string): string {
  const anchor = outputAnchor(b);
  return path.join(path.dirname(anchor), naming.replace(/\$\{name\}/g, checkpointStem(anchor)));
}

/**
 * Where `align --symmetry orthogonal` of B goes: a Hugging Face (or sharded) B gets a folder
 * `<folder>-aligned` beside its folder, in B's layout with the config.json the folded form needs
 * (an untied head says `tie_word_embeddings: false`: a lone weights file could not be loaded or
 * evaluated); any other B the usual aligned file name.
 */
export function orthogonalOutputPath(b: string, naming: string): string {
  const layout = locateCheckpoint(b);
  if (!(layout.huggingFace || layout.sharded)) return alignedOutputPath(b, naming);
  const anchor = outputAnchor(b);
  const folder = anchor === b ? layout.folder : path.join(path.dirname(anchor), checkpointStem(anchor));
  return `${folder}-aligned`;
}

/**
 * Where a merge with reference `ref` goes: `<ref>.merged.safetensors` beside it; for a Hugging
 * Face model (config.json beside the weights) or a sharded one, a folder `<folder>-merged` beside
 * its folder, written in the same layout (config and tokenizer files copied). For a model in the
 * Hugging Face cache, in the workspace instead, named after the model (see outputAnchor).
 */
export function mergedOutputPath(ref: string): string {
  const layout = locateCheckpoint(ref);
  const anchor = outputAnchor(ref);
  if (layout.huggingFace || layout.sharded) {
    const folder = anchor === ref ? layout.folder : path.join(path.dirname(anchor), checkpointStem(anchor));
    return `${folder}-merged`;
  }
  return path.join(path.dirname(anchor), `${checkpointStem(anchor)}.merged.safetensors`);
}
