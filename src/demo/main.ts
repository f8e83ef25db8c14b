/**
 * `npm run demo`: the newcomer's tour of Re-Basin on real data (see docs/demo.md). Exit 0 on
 * success, 2 on bad flags, 130 when cancelled with Ctrl-C (nothing half-written), 1 on an error.
 */
import * as path from 'node:path';
import { EngineClient } from '../engine/client';
import { DEMO_USAGE, parseDemoOptions, type DemoOptions } from './options';
import { runDemo } from './run';
import { terminalReport } from './tables';

function where(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: DemoOptions | 'help';
  try {
    opts = parseDemoOptions(argv);
  } catch (e) {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n\n${DEMO_USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(DEMO_USAGE + '\n');
    return 0;
  }
  const controller = new AbortController();
  const onSigint = (): void => {
    process.stderr.write('\ndemo: stopping (Ctrl-C)...\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const logs: string[] = [];
  const client = EngineClient.start({ backend: opts.backend, workers: opts.workers, log: (l) => logs.push(l) });
  try {
    const { summary, files } = await runDemo(opts, client, { say: (l) => process.stdout.write(l + '\n') }, controller.signal);
    process.stdout.write('\n' + terminalReport(summary) + '\n\n');
    process.stdout.write(`report:   ${where(files.report)}  (open it in a browser)\n`);
    if (files.curve) process.stdout.write(`curve:    ${where(files.curve)}\n`);
    else process.stdout.write(`curve:    not drawn: ${files.curveSkipped}\n`);
    process.stdout.write(`heatmaps: ${files.heatmaps.map(where).join(', ')}\n`);
    process.stdout.write(`numbers:  ${where(files.summary)}\n`);
    process.stdout.write(`models:   ${where(path.dirname(summary.models.a))}/ (cached), ${where(summary.models.alignedB)}, ${where(summary.models.merged)}\n`);
    return 0;
  } catch (e) {
    if (controller.signal.aborted || (e as { kind?: unknown }).kind === 'Cancelled') {
      process.stderr.write('demo: cancelled; finished files are complete, nothing half-written was left\n');
      return 130;
    }
    process.stderr.write(`demo: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
    if (logs.length) process.stderr.write(`engine log:\n  ${logs.slice(-10).join('\n  ')}\n`);
    if (process.env.REBASIN_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    return 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await client.dispose();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
