/**
 * A child process run with its figures: wall time, peak RSS (VmHWM of /proc/<pid>/status, polled
 * every 200 ms: Linux only, `undefined` elsewhere), bytes read (/proc/<pid>/io), exit code and
 * output. Its stderr is kept in `logFile` with a timestamp per line. Used by the benches that time
 * the CLI (scale, lmtable).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface ChildFigures {
  readonly seconds: number;
  readonly peakRssBytes?: number;
  readonly readBytes?: number;
  readonly rchar?: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function procField(file: string, key: RegExp): number | undefined {
  try {
    const m = key.exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // the process ended between two polls
  }
}

/** Runs a command, polling /proc/<pid>/status (VmHWM) and /proc/<pid>/io every 200 ms. */
export function runMeasured(cmd: string, args: readonly string[], logFile: string): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = fs.createWriteStream(logFile);
    const stamp = (): string => (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1).padStart(7);
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) log.write(`${stamp()} ${l}\n`);
    });
    let peak: number | undefined;
    let readBytes: number | undefined;
    let rchar: number | undefined;
    const poll = (): void => {
      const hwm = procField(`/proc/${child.pid}/status`, /VmHWM:\s+(\d+) kB/);
      if (hwm !== undefined) peak = Math.max(peak ?? 0, hwm * 1024);
      readBytes = procField(`/proc/${child.pid}/io`, /read_bytes:\s+(\d+)/) ?? readBytes;
      rchar = procField(`/proc/${child.pid}/io`, /rchar:\s+(\d+)/) ?? rchar;
    };
    const timer = setInterval(poll, 200);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      log.end(partial ? `${stamp()} ${partial}\n` : '');
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssBytes: peak, readBytes, rchar, code, stdout, stderr });
    });
  });
}
