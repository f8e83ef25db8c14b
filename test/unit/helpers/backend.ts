/**
 * Which tfjs backend the engine tests compute on. `wasm` by default (every machine has it);
 * `npm test`'s `native` stage runs the same files again with REBASIN_TEST_BACKEND=tensorflow and
 * REBASIN_TFJS_NODE naming the tfjs-node built by `npm run native:build`.
 */
import type { BackendName } from '../../../src/engine/protocol';
import { tfjsNodeOverride } from '../../../src/engine/backend';

export function testBackend(): BackendName {
  const b = process.env.REBASIN_TEST_BACKEND;
  if (b === undefined || b === '') return 'wasm';
  if (b !== 'tensorflow' && b !== 'wasm' && b !== 'cpu') throw new Error(`REBASIN_TEST_BACKEND=${b}: expected tensorflow, wasm or cpu`);
  return b;
}

/** Whether tfjs-node should load here: installed in node_modules, or named by REBASIN_TFJS_NODE. */
export function tfjsNodeExpected(): boolean {
  if (tfjsNodeOverride() !== undefined) return true;
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}
