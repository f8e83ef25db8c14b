/**
 * Chooses the tfjs backend for this thread: native `tensorflow` (tfjs-node, an optional
 * dependency) when its addon loads, else `wasm` (SIMD, single-threaded in Node), else `cpu`.
 * tfjs is not bundled (see scripts/build.mjs), so tfjs-node registers its kernels in the same
 * tfjs-core instance we import here.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { EngineError } from './errors';
import { quietNativeLogs } from './nativeLogs';
import type { BackendChoice, BackendName } from './protocol';

export type Log = (line: string) => void;

export { quietNativeLogs };

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}

async function tryTensorflow(log: Log): Promise<string | undefined> {
  quietNativeLogs();
  try {
    // Optional dependency: absent (MODULE_NOT_FOUND) or present without its addon on many machines.
    require('@tensorflow/tfjs-node');
  } catch (e) {
    return `@tensorflow/tfjs-node cannot load (${firstLine(e)})`;
  }
  if (tf.findBackend('tensorflow') === null && tf.findBackendFactory('tensorflow') === null) {
    return '@tensorflow/tfjs-node loaded but registered no `tensorflow` backend in our tfjs-core (version mismatch?)';
  }
  const ok = await tf.setBackend('tensorflow');
  if (!ok || tf.getBackend() !== 'tensorflow') return 'the `tensorflow` backend failed to initialise';
  log('tfjs backend: tensorflow (native)');
  return undefined;
}

/** Folder holding tfjs-backend-wasm's .wasm files, with the trailing '/' setWasmPaths needs. */
export function wasmDirectory(): string {
  const candidates: string[] = [];
  try {
    candidates.push(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')));
  } catch {
    // Not resolvable from here; the build copies the files to dist/wasm beside the bundle.
  }
  candidates.push(path.join(__dirname, 'wasm'));
  const dir = candidates.find((d) => fs.existsSync(path.join(d, 'tfjs-backend-wasm.wasm'))) ?? candidates[0];
  return dir.endsWith(path.sep) || dir.endsWith('/') ? dir : `${dir}/`;
}

async function tryWasm(log: Log): Promise<string | undefined> {
  // Without the trailing '/' the file is not found and tfjs silently falls back to cpu.
  setWasmPaths(wasmDirectory());
  let ok: boolean;
  try {
    ok = await tf.setBackend('wasm');
  } catch (e) {
    return `the \`wasm\` backend failed to initialise (${firstLine(e)})`;
  }
  if (!ok || tf.getBackend() !== 'wasm') return 'the `wasm` backend failed to initialise';
  log('tfjs backend: wasm');
  return undefined;
}

async function tryCpu(log: Log): Promise<string | undefined> {
  const ok = await tf.setBackend('cpu');
  if (!ok || tf.getBackend() !== 'cpu') return 'the `cpu` backend failed to initialise';
  log('tfjs backend: cpu (pure JavaScript, slow)');
  return undefined;
}

const loaders: Record<BackendName, (log: Log) => Promise<string | undefined>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

let current: BackendName | undefined;

/** Sets up tfjs in this thread and returns the backend in use. Idempotent for the same choice. */
export async function initBackend(choice: BackendChoice, log: Log = () => undefined): Promise<BackendName> {
  if (current && (choice === 'auto' || choice === current)) return current;
  const order: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const reasons: string[] = [];
  for (const name of order) {
    const reason = await loaders[name](log);
    if (reason === undefined) {
      await tf.ready();
      current = name;
      return name;
    }
    reasons.push(reason);
    if (choice === 'auto') log(`tfjs backend ${name} unavailable: ${reason}`);
  }
  throw new EngineError('BackendUnavailable', `backend \`${choice}\` cannot load: ${reasons.join('; ')}`);
}

/** The backend chosen by `initBackend` in this thread (throws before it ran). */
export function currentBackend(): BackendName {
  if (!current) throw new EngineError('BackendUnavailable', 'no tfjs backend initialised in this thread');
  return current;
}
