/**
 * Chooses the tfjs backend for this thread: native `tensorflow` (tfjs-node, an optional
 * dependency) when its addon loads, else `wasm` (SIMD, single-threaded in Node), else `cpu`.
 * tfjs is bundled into dist/worker.js; tfjs-node is not (a native addon, hundreds of MB) and is
 * loaded at run time from a folder, with its `@tensorflow/tfjs-core` requests answered by the
 * tfjs-core instance imported here, so its kernels register where our code computes.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// Imported as a namespace (not for side effects only): the bundler keeps it, and tfjs-node's
// requests for it get this instance.
import * as tfCpu from '@tensorflow/tfjs-backend-cpu';
// The union package (layers, converter, data) that tfjs-node re-exports; it also registers the
// gradients training needs (see gradients.ts), so the worker carries it anyway.
import * as tfUnion from '@tensorflow/tfjs';
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

/**
 * The tfjs-node package folder to load: the one given (the extension's
 * `rebasin.nativeBackendPath`), else REBASIN_TFJS_NODE (CLI, tests; `npm run native:build`
 * prints it), else none: `@tensorflow/tfjs-node` is then looked up as an ordinary dependency.
 */
export function tfjsNodeOverride(configured?: string): string | undefined {
  const dir = configured || process.env.REBASIN_TFJS_NODE;
  return dir ? path.resolve(dir) : undefined;
}

type Load = (request: string, parent: NodeModule | undefined, isMain: boolean) => unknown;

let shared = false;

/**
 * From now on, in this thread, `require('@tensorflow/tfjs-core')`, `-backend-cpu` and
 * `require('@tensorflow/tfjs')` return the instances this module uses. In dist/worker.js those
 * are bundled and nothing else requires tfjs by name, so only tfjs-node and what it loads are
 * affected; from sources they are the node_modules copies the requests would load anyway.
 */
function shareOurTfjs(): void {
  if (shared) return;
  shared = true;
  const Module = require('node:module') as { _load: Load };
  const original = Module._load;
  const ours: Record<string, unknown> = { '@tensorflow/tfjs-core': tf, '@tensorflow/tfjs-backend-cpu': tfCpu, '@tensorflow/tfjs': tfUnion };
  Module._load = function loadShared(request, parent, isMain) {
    return Object.hasOwn(ours, request) ? ours[request] : original.call(this, request, parent, isMain);
  };
}

/** Loads tfjs-node: from `dir` when given, else as an ordinary dependency. */
function requireTfjsNode(dir: string | undefined): void {
  shareOurTfjs();
  if (dir) require(dir);
  else require('@tensorflow/tfjs-node');
}

async function tryTensorflow(log: Log, nativeDir?: string): Promise<string | undefined> {
  quietNativeLogs();
  const dir = tfjsNodeOverride(nativeDir);
  try {
    // Optional: absent (MODULE_NOT_FOUND) or present without its addon on many machines.
    requireTfjsNode(dir);
  } catch (e) {
    return `@tensorflow/tfjs-node cannot load${dir ? ` from ${dir}` : ''} (${firstLine(e)})`;
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
  // The build copies them to dist/wasm beside the bundle; from sources, the package has them.
  const candidates = [path.join(__dirname, 'wasm')];
  try {
    candidates.push(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')));
  } catch {
    // Not resolvable from here (an installed extension has no node_modules).
  }
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

const loaders: Record<BackendName, (log: Log, nativeDir?: string) => Promise<string | undefined>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

let current: BackendName | undefined;

/**
 * Sets up tfjs in this thread and returns the backend in use. Idempotent for the same choice.
 * `nativeDir`: the tfjs-node folder to try for `tensorflow` (see tfjsNodeOverride).
 */
export async function initBackend(choice: BackendChoice, log: Log = () => undefined, nativeDir?: string): Promise<BackendName> {
  if (current && (choice === 'auto' || choice === current)) return current;
  const order: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const reasons: string[] = [];
  for (const name of order) {
    const reason = await loaders[name](log, nativeDir);
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
