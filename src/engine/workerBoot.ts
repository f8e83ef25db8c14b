/**
 * Entry of a compute worker that starts from V8's code cache (bundled to dist/workerBoot.js).
 * dist/worker.js is 5 MB of JavaScript (tfjs inside): compiling it was about a third of a
 * worker's start-up in a profile of `rebasin align` (0.1 s on 2 cores). The build writes the
 * cache beside it (dist/worker.js.cache, scripts/build.mjs) with the Node that built it; a Node
 * whose V8 differs rejects the cache and compiles as before, and a cache older than the bundle
 * (a rebuild in watch mode) is not used at all. Either way the same code runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import Module from 'node:module';

/** The code cache of `script` when it was written after the script (else it may be another build's). */
function freshCache(script: string): Buffer | undefined {
  try {
    const cache = `${script}.cache`;
    if (fs.statSync(cache).mtimeMs < fs.statSync(script).mtimeMs) return undefined;
    return fs.readFileSync(cache);
  } catch {
    return undefined;
  }
}

/** Runs `script` as a CommonJS module (its own __filename, __dirname and require), compiled with its cache when usable. */
function runWithCodeCache(script: string): void {
  const compiled = new vm.Script(Module.wrap(fs.readFileSync(script, 'utf8')), { filename: script, cachedData: freshCache(script) });
  const mod = new Module(script);
  mod.filename = script;
  const run = compiled.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  run.call(mod.exports, mod.exports, Module.createRequire(script), mod, script, path.dirname(script));
}

runWithCodeCache(path.join(__dirname, 'worker.js'));
