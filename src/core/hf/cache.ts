/**
 * The local Hugging Face hub cache, read only and offline: `hf:org/name[@rev]` resolved to a
 * snapshot folder, and the cached models listed for the pickers. The layout huggingface_hub
 * writes (huggingface.co/docs/huggingface_hub/guides/manage-cache):
 *
 *   <hub>/models--org--name/refs/main                  the commit hash of the ref, one line
 *   <hub>/models--org--name/snapshots/<hash>/<file>    symlinks into ../../blobs/<sha>
 *   <hub>/models--org--name/blobs/<sha>                the bytes
 *
 * <hub> is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub. Nothing here touches the network: a model that is not in the cache
 * is an error naming the folder looked in.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { safeText } from '../files';
import { SINGLE_WEIGHTS, locateCheckpoint } from './layout';

export const HF_PREFIX = 'hf:';

/** A malformed `hf:` reference, or one the cache cannot answer (one line, naming the folder). */
export class HfCacheError extends Error {
  override readonly name = 'HfCacheError';
}

/** The environment variables the hub cache location depends on. */
export interface HfCacheEnv {
  readonly HF_HUB_CACHE?: string;
  readonly HUGGINGFACE_HUB_CACHE?: string;
  readonly HF_HOME?: string;
  readonly XDG_CACHE_HOME?: string;
}

/** The hub cache folder huggingface_hub uses with this environment and home folder. */
export function hubCacheDir(env: HfCacheEnv, home: string): string {
  const set = (v: string | undefined): v is string => v !== undefined && v !== '';
  if (set(env.HF_HUB_CACHE)) return path.resolve(env.HF_HUB_CACHE);
  if (set(env.HUGGINGFACE_HUB_CACHE)) return path.resolve(env.HUGGINGFACE_HUB_CACHE); // older name
  if (set(env.HF_HOME)) return path.resolve(env.HF_HOME, 'hub');
  return path.resolve(set(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, '.cache'), 'huggingface', 'hub');
}

export interface HfRef {
  /** `org/name` (or a bare `name`). */
  readonly repoId: string;
  /** A ref name (`main`, `pr/1`, a tag) or a commit hash; undefined means `main`. */
  readonly revision?: string;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const REVISION = /^[\w.-]+(\/[\w.-]+)*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** True for a command-line argument naming a cached model (`hf:org/name[@rev]`). */
export function isHfRef(arg: string): boolean {
  return arg.startsWith(HF_PREFIX);
}

/** Parses `hf:org/name[@rev]`; a malformed one is an error saying what is expected. */
export function parseHfRef(arg: string): HfRef {
  const body = arg.slice(HF_PREFIX.length);
  const at = body.indexOf('@');
  const repoId = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? undefined : body.slice(at + 1);
  const ok = REPO_ID.test(repoId) && !repoId.includes('..') && (revision === undefined || (REVISION.test(revision) && !revision.split('/').includes('..')));
  if (!ok) throw new HfCacheError(`${safeText(arg, 200)}: expected hf:org/name or hf:org/name@revision (a ref name or commit hash)`);
  return revision === undefined ? { repoId } : { repoId, revision };
}

/** The cache folder of a model repository: `models--org--name`. */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split('/').join('--')}`;
}

function repoIdOf(folderName: string): string {
  return folderName.slice('models--'.length).split('--').join('/');
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The checkpoint in a snapshot (following its symlinks), as a Hugging Face folder is read:
 * model.safetensors, else its shard index, else pytorch_model.bin, its index, flax_model.msgpack.
 */
export function snapshotWeights(snapshot: string): string | undefined {
  try {
    return locateCheckpoint(snapshot).weights;
  } catch {
    return undefined;
  }
}

/** Reads refs/<name> (a commit hash); undefined when there is no such ref. */
function readRef(repoDir: string, name: string): string | undefined {
  try {
    const hash = readFileSync(path.join(repoDir, 'refs', name), 'utf8').trim();
    return COMMIT.test(hash) ? hash : undefined;
  } catch {
    return undefined;
  }
}

export interface ResolvedHfRef {
  readonly repoId: string;
  readonly commit: string;
  /** The snapshot folder: what the rest of Re-Basin opens as a Hugging Face folder. */
  readonly folder: string;
}

/**
 * Resolves `hf:org/name[@rev]` in the cache at `hub`: the revision (default `main`) as a ref
 * name, else as a commit hash (full, or a unique prefix of 7 or more characters). Every miss is
 * one line naming the folder that was looked in.
 */
export function resolveHfRef(arg: string, hub: string): ResolvedHfRef {
  const { repoId, revision = 'main' } = parseHfRef(arg);
  const repoDir = path.join(hub, repoFolderName(repoId));
  const shown = safeText(arg, 200);
  if (!isDir(repoDir)) {
    throw new HfCacheError(`${shown}: ${repoId} is not in the Hugging Face cache (looked in ${repoDir}; nothing is downloaded: fetch it with \`hf download ${repoId}\`)`);
  }
  const snapshots = path.join(repoDir, 'snapshots');
  let commit = readRef(repoDir, revision);
  if (commit === undefined && /^[0-9a-f]{7,40}$/.test(revision)) {
    const matches = (isDir(snapshots) ? readdirSync(snapshots) : []).filter((h) => COMMIT.test(h) && h.startsWith(revision));
    if (matches.length > 1) throw new HfCacheError(`${shown}: commit prefix ${revision} matches ${matches.length} snapshots in ${snapshots}`);
    commit = matches[0];
  }
  if (commit === undefined) {
    throw new HfCacheError(`${shown}: revision ${revision} is neither a ref in ${path.join(repoDir, 'refs')} nor a cached commit in ${snapshots}`);
  }
  const folder = path.join(snapshots, commit);
  if (!isDir(folder)) throw new HfCacheError(`${shown}: revision ${revision} is commit ${commit}, whose snapshot ${folder} is not in the cache`);
  if (snapshotWeights(folder) === undefined) {
    throw new HfCacheError(`${shown}: snapshot ${folder} holds no weights (${SINGLE_WEIGHTS}, pytorch_model.bin, flax_model.msgpack or their indexes; not downloaded?)`);
  }
  return { repoId, commit, folder };
}

export interface CachedModel {
  readonly repoId: string;
  readonly commit: string;
  /** Refs pointing at this commit (`main`, tags), sorted; empty for a snapshot no ref names. */
  readonly refs: readonly string[];
  readonly folder: string;
  /** The weights inside the snapshot (model.safetensors, its index, pytorch_model.bin, …). */
  readonly weights: string;
  /** `hf:org/name@ref` (or `@commit`): how the CLI names it. */
  readonly ref: string;
}

/** `hf:org/name@main` (else another ref naming the commit, else the commit itself). */
function cliName(repoId: string, commit: string, refs: readonly string[]): string {
  return `${HF_PREFIX}${repoId}@${refs.includes('main') ? 'main' : (refs[0] ?? commit)}`;
}

/** Ref names under refs/ (nested ones like `pr/1` included), with their commit hashes. */
function listRefs(repoDir: string): Map<string, string[]> {
  const byCommit = new Map<string, string[]>();
  const walk = (rel: string, depth: number): void => {
    let entries: string[];
    try {
      entries = readdirSync(path.join(repoDir, 'refs', rel));
    } catch {
      return;
    }
    for (const e of entries) {
      const name = rel ? `${rel}/${e}` : e;
      if (isDir(path.join(repoDir, 'refs', name))) {
        if (depth < 3) walk(name, depth + 1);
        continue;
      }
      const hash = readRef(repoDir, name);
      if (hash) byCommit.set(hash, [...(byCommit.get(hash) ?? []), name].sort());
    }
  };
  walk('', 0);
  return byCommit;
}

/**
 * The cached models with weights Re-Basin reads, by repository, then `main` first, other named
 * snapshots next, unnamed ones last. At most `limit` entries; an absent or unreadable cache lists none.
 */
export function listCachedModels(hub: string, limit = 200): CachedModel[] {
  let repos: string[];
  try {
    repos = readdirSync(hub).filter((f) => f.startsWith('models--')).sort();
  } catch {
    return [];
  }
  const out: CachedModel[] = [];
  for (const repo of repos) {
    const repoDir = path.join(hub, repo);
    const repoId = repoIdOf(repo);
    const refs = listRefs(repoDir);
    let snapshots: string[];
    try {
      snapshots = readdirSync(path.join(repoDir, 'snapshots')).filter((h) => COMMIT.test(h));
    } catch {
      continue;
    }
    const rank = (h: string): number => (refs.get(h)?.includes('main') ? 0 : refs.has(h) ? 1 : 2);
    for (const commit of snapshots.sort((x, y) => rank(x) - rank(y) || x.localeCompare(y))) {
      const folder = path.join(repoDir, 'snapshots', commit);
      const weights = snapshotWeights(folder);
      if (weights === undefined) continue;
      const names = refs.get(commit) ?? [];
      out.push({ repoId, commit, refs: names, folder, weights, ref: cliName(repoId, commit, names) });
      if (out.length >= limit) return out;
    }
  }
  return out;
}

/** The cached model a path lies in (labels, output names), when it is inside a snapshot of `hub`. */
export function cachedModelOf(file: string, hub: string): { repoId: string; commit: string; ref: string } | undefined {
  const rel = path.relative(hub, path.resolve(file));
  const parts = rel.split(path.sep);
  if (rel.startsWith('..') || path.isAbsolute(rel) || parts.length < 4 || !parts[0].startsWith('models--') || parts[1] !== 'snapshots') return undefined;
  const [repo, , commit] = parts;
  const repoId = repoIdOf(repo);
  return { repoId, commit, ref: cliName(repoId, commit, listRefs(path.join(hub, repo)).get(commit) ?? []) };
}
