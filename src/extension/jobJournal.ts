/**
 * Jobs under way, one small file each in `<storage>/jobs/` (written when a job starts, deleted
 * when it ends, whatever the end). A file still there at activation is a job a window reload
 * (or a closed window) stopped: it becomes a run history entry that says so, instead of
 * vanishing without a word.
 */
import * as vscode from 'vscode';
import type { EngineRequest } from '../engine/protocol';
import { interruptedRun, jobOf, parseJobEntry } from './interruptedJob';
import { type Log, errorMessage } from './log';
import type { RunHistory } from './runHistory';

export class JobJournal {
  private readonly dir: vscode.Uri;

  constructor(storage: vscode.Uri, private readonly log: Log) {
    this.dir = vscode.Uri.joinPath(storage, 'jobs');
  }

  /** Notes `request` as under way; the returned function removes the note. Never throws. */
  async begin(request: EngineRequest): Promise<() => Promise<void>> {
    const job = jobOf(request, Date.now(), process.pid);
    if (!job) return async () => undefined;
    const file = vscode.Uri.joinPath(this.dir, `${job.startedAt.toString(36)}-${Math.random().toString(36).slice(2, 8)}.json`);
    try {
      await vscode.workspace.fs.createDirectory(this.dir);
      await vscode.workspace.fs.writeFile(file, new TextEncoder().encode(JSON.stringify(job)));
    } catch (err) {
      this.log.warn(`job journal: could not note the ${job.kind} under way (${errorMessage(err)})`);
      return async () => undefined;
    }
    return () => this.remove(file);
  }

  /** Turns the notes left by an earlier window into "interrupted" history entries, oldest first. */
  async recover(history: RunHistory): Promise<number> {
    let names: [string, vscode.FileType][];
    try {
      names = await vscode.workspace.fs.readDirectory(this.dir);
    } catch {
      return 0;
    }
    let recovered = 0;
    for (const [name] of names.filter(([n, t]) => t === vscode.FileType.File && n.endsWith('.json')).sort()) {
      const file = vscode.Uri.joinPath(this.dir, name);
      try {
        const job = parseJobEntry(JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(file))));
        // Another window's job still running (global storage is shared when no folder is open).
        if (job?.pid !== undefined && job.pid !== process.pid && isAlive(job.pid)) continue;
        if (job) {
          await history.add(interruptedRun(job));
          this.log.info(`${job.kind} of ${job.bPath} → ${job.aPath} was interrupted by a window reload; recorded in the run history`);
          recovered++;
        }
      } catch (err) {
        this.log.warn(`job journal: dropped ${name} (${errorMessage(err)})`);
      }
      await this.remove(file);
    }
    return recovered;
  }

  private async remove(file: vscode.Uri): Promise<void> {
    try {
      await vscode.workspace.fs.delete(file);
    } catch {
      // Already gone.
    }
  }
}

/** True when a process with this id exists (signal 0 only checks). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
