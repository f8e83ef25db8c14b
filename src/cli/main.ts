/**
 * `rebasin`: the command-line twin of the extension. Exit 0 on success, 2 on bad usage
 * (with usage text), 1 on any error with one line naming the file (stack with --debug).
 */
import { safeJson, safeText } from '../core/files';
import { COMMANDS } from './commands';
import { USAGE, UsageError, parseCommandLine } from './args';
import { resolveHfPositionals } from './hfRefs';

/** Signals that cancel the running request like Ctrl-C, so the engine removes any half-written output. */
const CANCEL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The cancel signal received, re-raised if the process does not end by itself after cleanup. */
let cancelledBy: NodeJS.Signals | undefined;

/**
 * Ends the process by `signal` itself (its default action, our handlers being gone) in `ms` unless
 * it has exited by then: a read stuck in the operating system (a FIFO, a hung network file
 * system) holds the process open, and even process.exit waits for it.
 */
function endBySignalAfter(signal: NodeJS.Signals, ms: number): void {
  setTimeout(() => {
    for (const sig of CANCEL_SIGNALS) process.removeAllListeners(sig);
    process.kill(process.pid, signal);
  }, ms).unref();
}

/** Exit quietly when the reader of our output goes away (`rebasin inspect x | head -1`). */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
exitQuietlyOnClosedPipe(process.stdout);
exitQuietlyOnClosedPipe(process.stderr);

interface KindedError {
  readonly kind?: unknown;
  readonly message?: unknown;
  readonly stack?: unknown;
}

async function main(argv: readonly string[]): Promise<number> {
  let debug = argv.includes('--debug');
  try {
    const args = parseCommandLine(argv);
    debug = args.values.debug ?? false;
    if (args.values.help || args.command === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const run = COMMANDS[args.command];
    if (!run) throw new UsageError(args.command ? `unknown command "${args.command}"` : 'no command given');
    const resolvedArgs = resolveHfPositionals(args);
    const controller = new AbortController();
    // Ctrl-C, `kill` and a closed terminal cancel the running request; the engine then removes
    // any half-written output. A second signal finds no handler and ends the process at once.
    const onSignal = (signal: NodeJS.Signals): void => {
      for (const sig of CANCEL_SIGNALS) process.removeListener(sig, onSignal);
      cancelledBy = signal;
      controller.abort();
      // The engine stops within about a second; past that, the signal ends the process.
      endBySignalAfter(signal, 10_000);
    };
    for (const sig of CANCEL_SIGNALS) process.on(sig, onSignal);
    try {
      await run({
        args: resolvedArgs,
        signal: controller.signal,
        out: {
          json: (value) => process.stdout.write(safeJson(JSON.stringify(value)) + '\n'),
          text: (line) => process.stdout.write(line + '\n'),
        },
      });
    } finally {
      for (const sig of CANCEL_SIGNALS) process.removeListener(sig, onSignal);
    }
    return 0;
  } catch (err) {
    const e = (err ?? {}) as KindedError;
    if (err instanceof UsageError) {
      process.stderr.write(`rebasin: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (e.kind === 'Cancelled') {
      process.stderr.write('rebasin: cancelled; nothing was written\n');
      return 130;
    }
    // One line, whatever a file name or value inside the message holds.
    process.stderr.write(`rebasin: ${safeText(message.split('\n')[0], 2000)}\n`);
    if (debug && typeof e.stack === 'string') process.stderr.write(e.stack + '\n');
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Cleanup is done: the process ends now (exit 130), or by the signal if something holds it.
  if (code === 130 && cancelledBy !== undefined) endBySignalAfter(cancelledBy, 1000);
});
