/**
 * Progress on stderr: a redrawn bar on a terminal, plain lines (at most one a second)
 * elsewhere, so piped JSON on stdout stays clean. Shared by the CLI and the demo. The words,
 * percentage and time left come from src/core/progressText.ts (the extension shows the same).
 */
import type { Progress } from '../core/checkpoint';
import { ProgressClock, formatPercentAndTime } from '../core/progressText';

export interface ProgressLine {
  update(p: Progress): void;
  /** Ends the line; `summary` replaces the bar. */
  done(summary?: string): void;
}

const BAR_WIDTH = 24;

export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr, quiet = false, now: () => number = Date.now): ProgressLine {
  const tty = stream.isTTY === true;
  const started = now();
  const clock = new ProgressClock(now);
  let lastPrinted = -Infinity;
  let drawn = false;
  const elapsed = (): string => `${((now() - started) / 1000).toFixed(1)}s`;
  return {
    update(p) {
      if (quiet) return;
      const t = now();
      const view = clock.view(p);
      const tail = formatPercentAndTime(view);
      if (tty) {
        const bar = view.percent === undefined ? '' : `[${'#'.repeat(Math.round((view.percent / 100) * BAR_WIDTH)).padEnd(BAR_WIDTH, '.')}] `;
        const text = `${label} ${bar}${view.words}${tail ? ` (${tail})` : ''} ${elapsed()}`;
        stream.write(`\r\x1b[2K${text.slice(0, (stream.columns || 120) - 1)}`);
        drawn = true;
      } else if (t - lastPrinted >= 1000) {
        lastPrinted = t;
        stream.write(`${label}: ${view.words}${tail ? ` (${tail})` : ''} [${elapsed()}]\n`);
      }
    },
    done(summary) {
      if (quiet) return;
      if (tty && drawn) stream.write('\r\x1b[2K');
      stream.write(`${label}: ${summary ?? 'done'} (${elapsed()})\n`);
    },
  };
}
