/**
 * Progress as the user reads it, shared by the CLI's stderr line and the extension's
 * notification: the producer's own words (`message`, e.g. "Loss curve: 14 of 50 points"), a
 * percentage of the whole job and, once the rate is known, how long is left.
 * Pure: the clock is passed in, so tests drive time.
 */
import type { Progress } from './checkpoint';

/** What a progress update shows: its words, and the percentage and time left when known. */
export interface ProgressView {
  /** The producer's message, else its stage (with the sweep when given). */
  readonly words: string;
  /** Whole percent in [0, 100], when the producer gave a fraction. */
  readonly percent?: number;
  /** Estimated seconds left, once enough of the job is done to estimate it. */
  readonly secondsLeft?: number;
}

/** No estimate before this share of the job and this much time: early rates mislead. */
const ETA_MIN_FRACTION = 0.03;
const ETA_MIN_MS = 3000;
/** A fraction that falls by more than this starts a new phase (a new request): the clock restarts. */
const RESTART_DROP = 0.05;

/** The producer's words: `message` when given, else the stage and the sweep number. */
export function progressWords(p: Progress): string {
  const message = p.message?.trim();
  if (message) return message;
  const stage = p.stage.trim();
  const words = stage ? stage[0].toUpperCase() + stage.slice(1) : 'Working';
  return p.iteration !== undefined ? `${words}: sweep ${p.iteration}` : words;
}

/** "about 40 s left", "about 3 min left", "about 1 h 20 min left"; rounded so it does not flicker. */
export function formatTimeLeft(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 10) return 'a few seconds left';
  if (seconds < 60) return `about ${Math.ceil(seconds / 5) * 5} s left`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `about ${h} h${m ? ` ${m} min` : ''} left`;
}

/** "42%" and, when known, "about 1 min left", joined for one line. */
export function formatPercentAndTime(view: Pick<ProgressView, 'percent' | 'secondsLeft'>): string {
  const parts: string[] = [];
  if (view.percent !== undefined) parts.push(`${view.percent}%`);
  if (view.secondsLeft !== undefined) parts.push(formatTimeLeft(view.secondsLeft));
  return parts.join(', ');
}

/**
 * One line: "Loss curve: 14 of 50 points (28%, about 1 min left)". `scope` says what the time
 * left covers when it is not the whole job ("for this step").
 */
export function formatProgress(view: ProgressView, scope?: string): string {
  const tail = formatPercentAndTime(view);
  const scoped = scope && view.secondsLeft !== undefined && tail ? `${tail} ${scope}` : tail;
  return scoped ? `${view.words} (${scoped})` : view.words;
}

/**
 * The one estimate of time left, from the measured rate: seconds since `fraction` was
 * `startFraction`, times what is left over what was done. Undefined until enough is done for
 * the rate to mean something (early rates mislead), and once done.
 */
export function secondsLeftAtRate(elapsedMs: number, fraction: number, startFraction = 0): number | undefined {
  const done = fraction - startFraction;
  if (fraction >= 1 || done < ETA_MIN_FRACTION || elapsedMs < ETA_MIN_MS) return undefined;
  return ((elapsedMs / 1000) * (1 - fraction)) / done;
}

/**
 * A job made of stages that each report their own 0..1 fraction (reading, then matching, then
 * writing): maps every update to the fraction of the whole job, so the bar moves through the
 * stages instead of filling once per stage and then sitting still. `stages` lists the stages in
 * order with their share of the job (stage names as in Progress.stage; several names may share
 * a step). An update of a stage not listed keeps the fraction reached; it never goes backwards.
 */
export function jobFractions(stages: readonly (readonly [names: readonly string[], share: number])[]): (p: Progress) => Progress {
  const total = stages.reduce((s, [, share]) => s + share, 0) || 1;
  const spans = new Map<string, { start: number; share: number }>();
  let start = 0;
  for (const [names, share] of stages) {
    for (const n of names) spans.set(n, { start: start / total, share: share / total });
    start += share;
  }
  let reached = 0;
  return (p) => {
    const span = spans.get(p.stage);
    if (span) {
      const own = p.fraction !== undefined && Number.isFinite(p.fraction) ? Math.min(1, Math.max(0, p.fraction)) : 0;
      reached = Math.max(reached, span.start + own * span.share);
    }
    return { ...p, fraction: reached };
  };
}

/**
 * Turns a stream of progress updates into views: clamps the fraction, never lets the percentage
 * go backwards within a phase, and estimates the time left from the average rate since the
 * phase began (elapsed · (1 − f) / f).
 */
export class ProgressClock {
  private startMs: number | undefined;
  private startFraction = 0;
  private shown = -1;

  constructor(private readonly now: () => number = Date.now) {}

  /** The view of `p` at the current time. */
  view(p: Progress): ProgressView {
    const words = progressWords(p);
    const f = p.fraction;
    if (f === undefined || !Number.isFinite(f)) return { words };
    const fraction = Math.min(1, Math.max(0, f));
    const t = this.now();
    if (this.startMs === undefined || fraction < this.shown - RESTART_DROP) {
      this.startMs = t;
      this.startFraction = fraction;
      this.shown = fraction;
    }
    this.shown = Math.max(this.shown, fraction);
    const percent = Math.floor(this.shown * 100);
    const secondsLeft = secondsLeftAtRate(t - this.startMs, this.shown, this.startFraction);
    return secondsLeft === undefined ? { words, percent } : { words, percent, secondsLeft };
  }
}

/**
 * A permutation's name in the user's words for progress lines: `P_residual` -> "residual
 * stream", `P_model.layers.12.mlp` -> "layer 12 MLP", `P_model.layers.3.heads` -> "layer 3
 * attention heads"; any other name as it is.
 */
export function permutationWords(name: string): string {
  const bare = name.startsWith('P_') ? name.slice(2) : name;
  if (bare === 'residual') return 'residual stream';
  const m = /(?:^|\.)(?:layers|h|layer|blocks)\.(\d+)\.(?:.*\.)?(?:(mlp)|heads|kv_heads|attn|attention)$/.exec(bare);
  if (!m) return name;
  return `layer ${m[1]} ${m[2] !== undefined ? 'MLP' : 'attention heads'}`;
}
