/**
 * Tools for the hostile-input suite: run the built CLI in a child process while sampling its
 * peak memory from /proc, check that a refusal is one stderr line naming the file in the
 * user's terms, and check that a folder holds the same files with the same bytes afterwards.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const root = path.join(__dirname, '..', '..', '..');
export const cli = path.join(root, 'dist', 'cli.js');

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** Peak resident memory of the CLI process (all its threads), from /proc/<pid>/status VmHWM; 0 when unreadable. */
  readonly peakMb: number;
}

function vmHwmMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export interface RunOptions {
  readonly timeoutMs?: number;
  /** Called with the child once it runs (to send signals). */
  readonly onSpawn?: (child: ReturnType<typeof spawn>, output: { stderr: () => string }) => void;
  readonly cwd?: string;
}

/** Runs `node dist/cli.js ...args`; kills it (and fails) past the timeout: a hang is a failure. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CliRun> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => (peak = Math.max(peak, vmHwmMb(child.pid))), 25);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rebasin ${args.join(' ')} did not finish within ${timeoutMs} ms (hang?); stderr: ${stderr}`));
    }, timeoutMs);
    opts.onSpawn?.(child, { stderr: () => stderr });
    child.on('exit', () => (peak = Math.max(peak, vmHwmMb(child.pid))));
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, peakMb: peak });
    });
  });
}

/** Words that are not the user's terms: engine internals, raw OS codes, JS engine failures. */
const INTERNAL = /Error in |EISDIR|ENXIO|Offset is outside|memory access out of bounds|Maximum call stack|RangeError|TypeError|\bat .*\.js:\d+|undefined|\[object /;

/** A refusal: exit 1, exactly one stderr line, naming `file` (its base name), in the user's terms. */
export function assertRefused(r: CliRun, file: string, problem: RegExp): void {
  // Off a terminal the CLI prints no progress for its first seconds, so a refusal of the inputs
  // is alone on stderr; a refusal that comes later (a slow, loaded machine) may follow progress
  // lines ("barrier loading: ... (5.2s)"), which are not part of the error.
  const lines = r.stderr.split('\n').filter((l) => l.length > 0 && !/^(align|merge|barrier)\b.*\(\d+\.\ds\)$/.test(l));
  assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  const line = lines[0];
  assert.ok(line.includes(path.basename(file)), `names ${path.basename(file)}: ${line}`);
  assert.match(line, problem);
  assert.doesNotMatch(line, INTERNAL);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(line, /[\u0000-\u0008\u000b-\u001f\u007f\u202e]/, 'no raw control characters');
}

/** Name -> (kind, sha256 for files) of every entry of `dir` (not recursive). */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const s = fs.lstatSync(p);
    if (s.isFile() && s.size > 64 * 2 ** 20) out.set(name, `file ${s.size} ${s.mtimeMs}`); // big sparse inputs
    else if (s.isFile()) out.set(name, `file ${s.size} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    else if (s.isSymbolicLink()) out.set(name, `link ${fs.readlinkSync(p)}`);
    else out.set(name, s.isDirectory() ? 'dir' : s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : 'other');
  }
  return out;
}

/** The folder is exactly as it was: no leftovers, every input unchanged. */
export function assertUnchanged(dir: string, before: Map<string, string>): void {
  assert.deepEqual(snapshot(dir), before);
}

export function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', [p]);
  assert.equal(r.status, 0, `mkfifo ${p}: ${r.stderr}`);
}

/** A listening unix socket at `p`; close it when done. */
export async function unixSocket(p: string): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(p, resolve));
  return server;
}

/** A pid that ran and has exited (for stale temp files of "killed" runs). */
export function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

export { compressedZeros, idxHeader, npyBytes, rawSafetensors, sparseFile, zipBytes, type ZipEntry } from './dataFiles';
