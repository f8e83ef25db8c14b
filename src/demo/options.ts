/** Flags of `npm run demo` (defaults: the paper's MNIST MLP, two seeds). */
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import type { BackendChoice } from '../engine/protocol';

export interface DemoOptions {
  readonly width: number;
  readonly depth: number;
  readonly epochs: number;
  readonly seeds: readonly [number, number];
  readonly steps: number;
  readonly outDir: string;
  readonly backend: BackendChoice;
  readonly retrain: boolean;
  /** Use only the first N training and test examples (tests, quick looks); undefined = all. */
  readonly limit?: number;
  /** Compute worker threads (default 2: the two models train side by side). */
  readonly workers: number;
}

/** Fixed training recipe of the reference run (notes/COMPUTE.md). */
export const BATCH_SIZE = 500;
export const LEARNING_RATE = 1e-3;
/** Epochs of the reference numbers quoted in the output and docs. */
export const REFERENCE_EPOCHS = 10;
/** Default epochs: the most that keeps the whole demo under 3 minutes on wasm on 2 cores. */
export const DEFAULT_EPOCHS = 5;

/** Layer widths [784, W × depth, 10]. */
export function demoWidths(o: Pick<DemoOptions, 'width' | 'depth'>): number[] {
  return [784, ...Array.from({ length: o.depth }, () => o.width), 10];
}

export const DEMO_USAGE = `usage: npm run demo -- [--width 512] [--depth 3] [--epochs 5] [--seeds 0,1] [--steps 25]
                     [--out demo-output] [--backend auto|tensorflow|wasm|cpu] [--retrain]
                     [--limit N] [--workers 2]

Trains two MLPs on MNIST (784-W-...-W-10, ReLU, Adam 1e-3, batch 500), aligns B to A with weight
matching, computes the naive and aligned loss barriers on the test set, merges at the best lambda
and writes demo-output/report.html with PNG images. Trained models are cached in <out>/models.
--limit N uses the first N training and test images (quick runs); --retrain ignores the cache.`;

function int(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${text}"`);
  return n;
}

export function parseDemoOptions(argv: readonly string[]): DemoOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      width: { type: 'string' },
      depth: { type: 'string' },
      epochs: { type: 'string' },
      seeds: { type: 'string' },
      steps: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      retrain: { type: 'boolean' },
      limit: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const seeds = (values.seeds ?? '0,1').split(',').map((s) => int('seeds', s.trim(), 0, 0));
  if (seeds.length !== 2 || seeds[0] === seeds[1]) throw new Error(`--seeds must be two different integers like 0,1, got "${values.seeds}"`);
  const backend = values.backend ?? 'auto';
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(backend)) throw new Error(`--backend must be auto, tensorflow, wasm or cpu, got "${backend}"`);
  return {
    width: int('width', values.width, 512, 1),
    depth: int('depth', values.depth, 3, 1),
    epochs: int('epochs', values.epochs, DEFAULT_EPOCHS, 1),
    seeds: [seeds[0], seeds[1]],
    steps: int('steps', values.steps, 25, 3),
    outDir: path.resolve(values.out ?? 'demo-output'),
    backend: backend as BackendChoice,
    retrain: values.retrain ?? false,
    ...(values.limit !== undefined ? { limit: int('limit', values.limit, 0, 1) } : {}),
    workers: int('workers', values.workers, 2, 1),
  };
}
