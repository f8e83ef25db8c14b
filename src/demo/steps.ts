/**
 * Runs the demo's steps one after another: each gets a terminal progress bar (src/cli/progress.ts)
 * and its wall time is recorded for the timings table.
 */
import type { Progress } from '../core/checkpoint';
import { progressLine } from '../cli/progress';

export interface StepRunner {
  /** Runs `work` under a progress bar labelled `label`; `summary` turns its result into the closing line. */
  run<T>(label: string, work: (onProgress: (p: Progress) => void) => Promise<T>, summary?: (r: T) => string): Promise<T>;
  /** Seconds per step label, in the order run. */
  readonly seconds: ReadonlyMap<string, number>;
}

export function stepRunner(stream: NodeJS.WriteStream = process.stderr): StepRunner {
  const seconds = new Map<string, number>();
  return {
    seconds,
    async run(label, work, summary) {
      const line = progressLine(label, stream);
      const t0 = performance.now();
      line.update({ stage: 'starting', fraction: 0 });
      try {
        const r = await work((p) => line.update(p));
        seconds.set(label, (performance.now() - t0) / 1000);
        line.done(summary ? summary(r) : 'done');
        return r;
      } catch (e) {
        line.done(e instanceof Error && (e as { kind?: unknown }).kind === 'Cancelled' ? 'cancelled' : 'failed');
        throw e;
      }
    },
  };
}

/**
 * Merges the progress of parallel requests (the two trainings) into one bar: the mean fraction,
 * and each part's latest message.
 */
export function combinedProgress(parts: readonly string[], onProgress: (p: Progress) => void): ((p: Progress) => void)[] {
  const fractions = parts.map(() => 0);
  const messages = parts.map(() => '');
  const emit = (): void => {
    const fraction = fractions.reduce((s, f) => s + f, 0) / parts.length;
    onProgress({ stage: 'training', fraction, message: parts.map((name, i) => `${name}: ${messages[i] || 'starting'}`).join(' | ') });
  };
  return parts.map((_, i) => (p: Progress) => {
    if (p.fraction !== undefined) fractions[i] = p.fraction;
    messages[i] = p.message ?? p.stage;
    emit();
  });
}
