/**
 * Ctrl-C in the middle of a `rebasin` run: starts dist/cli.js with `--debug` (the engine's log
 * lines reach stderr at once, while progress waits a few seconds off a terminal: the first one
 * means the signal handlers are in place and the worker is running), waits `afterMs` more, sends
 * SIGINT, and reports the exit code, how long the exit took and stderr.
 */
import { spawn } from 'node:child_process';

export interface Interrupted {
  /** Whether the run was still going when the signal was sent. */
  readonly running: boolean;
  readonly code: number | null;
  /** Milliseconds from the signal to the exit. */
  readonly stoppedInMs: number;
  readonly stderr: string;
}

export async function interruptCli(cli: string, args: readonly string[], afterMs = 0): Promise<Interrupted> {
  const child = spawn(process.execPath, [cli, ...args, '--debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let running = true;
  void exited.then(() => (running = false));
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (/\[engine\]/.test(stderr) || !running) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
  if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
  const wasRunning = running;
  const t0 = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  return { running: wasRunning, code, stoppedInMs: Date.now() - t0, stderr };
}
