/**
 * A Hugging Face hub cache built the way huggingface_hub writes it: each file's bytes in
 * blobs/<sha256>, snapshots/<commit>/<file> a relative symlink to it, refs/<name> the commit.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface CachedSnapshot {
  /** The snapshot folder. */
  readonly folder: string;
  readonly commit: string;
}

/** Adds `source`'s files as snapshot `commit` of `repoId` under `hub`, with `refs` naming it. */
export function addSnapshot(hub: string, repoId: string, source: string, commit: string, refs: readonly string[] = []): CachedSnapshot {
  const repoDir = path.join(hub, `models--${repoId.split('/').join('--')}`);
  const folder = path.join(repoDir, 'snapshots', commit);
  mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(folder, { recursive: true });
  for (const f of readdirSync(source)) {
    const bytes = readFileSync(path.join(source, f));
    const sha = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(path.join(repoDir, 'blobs', sha), bytes);
    symlinkSync(path.join('..', '..', 'blobs', sha), path.join(folder, f));
  }
  for (const ref of refs) {
    mkdirSync(path.dirname(path.join(repoDir, 'refs', ref)), { recursive: true });
    writeFileSync(path.join(repoDir, 'refs', ref), commit); // huggingface_hub writes no newline
  }
  return { folder, commit };
}

/** A 40-hex commit hash made from `seed` (stable across runs). */
export function fakeCommit(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}
