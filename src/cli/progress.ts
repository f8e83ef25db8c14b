/**
 * Progress on stderr: a redrawn bar on a terminal, plain lines (at most one a second)
 * elsewhere, so piped JSON on stdout stays clean. Shared by the CLI and the demo.
 */
import type { Progress } from '../core/checkpoint';

export interface ProgressLine {
  update(p: Progress): void;
  /** Ends the line; `summary` replaces the bar. */
  done(summary?: string): void;
}

const BAR_WIDTH = 24;

function describe(p: Progress): string {
  const parts: string[] = [];
  if (p.iteration !== undefined) parts.push(`sweep ${p.iteration}`);
  if (p.objective !== undefined) parts.push(`objective ${p.objective.toPrecision(7)}`);
  if (p.message) parts.push(p.message);
  return parts.join(', ');
}

export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressLine {
  const tty = stream.isTTY === true;
  const started = Date.now();
  let lastPrinted = 0;
  let drawn = false;
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  return {
    update(p) {
      if (quiet) return;
      const now = Date.now();
      if (tty) {
        const frac = p.fraction === undefined ? undefined : Math.max(0, Math.min(1, p.fraction));
        const bar = frac === undefined ? '' : `[${'#'.repeat(Math.round(frac * BAR_WIDTH)).padEnd(BAR_WIDTH, '.')}] ${(frac * 100).toFixed(0).padStart(3)}% `;
        const text = `${label} ${bar}${p.stage}${describe(p) ? ': ' + describe(p) : ''} ${elapsed()}`;
        stream.write(`\r\x1b[2K${text.slice(0, (stream.columns || 120) - 1)}`);
        drawn = true;
      } else if (now - lastPrinted >= 1000) {
        lastPrinted = now;
        const pct = p.fraction === undefined ? '' : ` ${(p.fraction * 100).toFixed(0)}%`;
        stream.write(`${label}${pct} ${p.stage}${describe(p) ? ': ' + describe(p) : ''} (${elapsed()})\n`);
      }
    },
    done(summary) {
      if (quiet) return;
      if (tty && drawn) stream.write('\r\x1b[2K');
      stream.write(`${label}: ${summary ?? 'done'} (${elapsed()})\n`);
    },
  };
}
