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

/**
 * A tfjs-node package outside node_modules, built by `npm run native:build` (it caches one
 * outside the clone where tfjs-node's own install cannot download libtensorflow). Opt-in, so
 * that building it changes nothing for runs that did not ask for it.
 */
export function tfjsNodeOverride(): string | undefined {
  const dir = process.env.REBASIN_TFJS_NODE;
  return dir ? path.resolve(dir) : undefined;
}

type ResolveFilename = (request: string, parent: NodeModule | undefined, isMain: boolean, options?: unknown) => string;
const TFJS_SHARED = /^@tensorflow\/tfjs(-(core|backend-cpu|backend-wasm|backend-webgl|converter|layers|data))?(\/.*)?$/;

/** node_modules folders whose `@tensorflow/tfjs*` requests already resolve to ours. */
const sharedScopes = new Set<string>();

/**
 * Loads tfjs-node from `dir` with its `@tensorflow/tfjs*` requests resolved from here, so its
 * kernels land in the tfjs-core instance this module uses (the cached package carries none).
 */
function requireTfjsNodeFrom(dir: string): void {
  const scope = fs.realpathSync(path.resolve(dir, '..', '..')) + path.sep; // its node_modules
  if (!sharedScopes.has(scope)) {
    sharedScopes.add(scope);
    const Module = require('node:module') as { _resolveFilename: ResolveFilename };
    const original = Module._resolveFilename;
    const self = module;
    // Module filenames are real paths, so a prefix test is enough.
    Module._resolveFilename = function resolveShared(request, parent, isMain, options) {
      const fromScope = parent?.filename?.startsWith(scope) === true && TFJS_SHARED.test(request);
      return original.call(this, request, fromScope ? self : parent, isMain, options);
    };
  }
  require(dir);
}

async function tryTensorflow(log: Log): Promise<string | undefined> {
  quietNativeLogs();
  const override = tfjsNodeOverride();
  try {
    // Optional dependency: absent (MODULE_NOT_FOUND) or present without its addon on many machines.
    if (override) requireTfjsNodeFrom(override);
    else require('@tensorflow/tfjs-node');
  } catch (e) {
    return `@tensorflow/tfjs-node cannot load${override ? ` from REBASIN_TFJS_NODE=${override}` : ''} (${firstLine(e)})`;
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
