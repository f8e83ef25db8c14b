/**
 * `rebasin`: the command-line twin of the extension. Exit 0 on success, 2 on bad usage
 * (with usage text), 1 on any error with one line naming the file (stack with --debug).
 */
import { COMMANDS } from './commands';
import { USAGE, UsageError, parseCommandLine } from './args';

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
    const controller = new AbortController();
    // Ctrl-C cancels the running request; the engine then removes any half-written output.
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      await run({
        args,
        signal: controller.signal,
        out: {
          json: (value) => process.stdout.write(JSON.stringify(value) + '\n'),
          text: (line) => process.stdout.write(line + '\n'),
        },
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
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
    process.stderr.write(`rebasin: ${message.split('\n')[0]}\n`);
    if (debug && typeof e.stack === 'string') process.stderr.write(e.stack + '\n');
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
