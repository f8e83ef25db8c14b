// `npm run native:build`: builds @tensorflow/tfjs-node's addon against the TensorFlow C library
// inside the `tensorflow-cpu` wheel that pip can fetch, for machines where tfjs-node's own
// install cannot download libtensorflow (its package is then absent). The result is cached
// OUTSIDE the clone, one folder per version set:
//
//   ${REBASIN_NATIVE_CACHE:-~/.cache/rebasin-native}/tfjs-node-<v>_tensorflow-cpu-<v>_<os>-<arch>/
//     node_modules/@tensorflow/tfjs-node      <- point REBASIN_TFJS_NODE here
//     rebasin-native.json                     <- written last: the entry is complete
//
// The cached package holds no @tensorflow/tfjs* of its own: src/engine/backend.ts loads it with
// those requests resolved to the project's copies, so tfjs-node registers its kernels in OUR
// tfjs-core (one instance). Nothing here is needed for the normal set-up (wasm).
//
// Idempotent: a complete entry is reused (prints where it is). Atomic: everything is built in a
// temp folder beside the entry and renamed into place only after the backend loaded from it.
// When it cannot build (no pip, no wheel, no compiler...), prints ONE line saying why and exits 1.
//
// Flags: --print-dir (stdout gets only the package folder, for scripts), --quiet (no progress lines).
// Recipe: docs/architecture.md ("Backends, measured"); about 1.5 min and 1 GB.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const printDir = process.argv.includes('--print-dir');
const quiet = process.argv.includes('--quiet');

/** The wheel whose C library we link against (its C API is what tfjs-node 4.x expects). */
const TENSORFLOW_CPU = process.env.REBASIN_TENSORFLOW_CPU ?? '2.21.0';
/** tfjs-node must match the project's tfjs-core exactly: it registers kernels in that instance. */
const TFJS_NODE = JSON.parse(readFileSync(join(root, 'node_modules', '@tensorflow', 'tfjs-core', 'package.json'), 'utf8')).version;

function cacheRoot() {
  return process.env.REBASIN_NATIVE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rebasin-native');
}
const entryName = `tfjs-node-${TFJS_NODE}_tensorflow-cpu-${TENSORFLOW_CPU}_${process.platform}-${process.arch}`;
const entry = join(cacheRoot(), entryName);
const packageIn = (dir) => join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
const marker = join(entry, 'rebasin-native.json');

const say = (line) => {
  if (!quiet) console.error(`native:build: ${line}`);
};

class CannotBuild extends Error {}

/** Runs a command; on failure throws with `what` and the last meaningful line of its output. */
function run(what, cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw new CannotBuild(`${what}: ${r.error.code === 'ENOENT' ? `${cmd} not found` : r.error.message}`);
  if (r.signal) throw new CannotBuild(`${what}: stopped by ${r.signal}`);
  if (r.status !== 0) {
    const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
    const log = join(cacheRoot(), 'last-failure.log');
    try {
      writeFileSync(log, `$ ${cmd} ${args.join(' ')}\n${output}`);
    } catch { /* the log is a courtesy */ }
    const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
    // The first compiler/pip error says more than the stack traces that follow it.
    if (lines.some((l) => /network connectivity/.test(l))) {
      throw new CannotBuild(`${what}: node-gyp could not download Node's headers (offline?); set npm_config_nodedir to a Node install with include/node (full output in ${log})`);
    }
    const telling = lines.find((l) => /fatal error|\berror:|^ERROR:|No matching distribution/.test(l))
      ?? [...lines].reverse().find((l) => /error|cannot|not found|failed/i.test(l) && !/most likely not a problem/.test(l))
      ?? lines.at(-1) ?? `exit ${r.status}`;
    throw new CannotBuild(`${what}: ${telling.slice(0, 300)} (full output in ${log})`);
  }
  return r.stdout;
}

function need(what, cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.signal) throw new CannotBuild(`stopped by ${r.signal}`);
  if (r.error || r.status !== 0) throw new CannotBuild(`${what} (${cmd} ${args.join(' ')} failed)`);
}

/** npm's own node-gyp, for node-pre-gyp when this script is not started by `npm run`. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const npmCli = process.env.npm_execpath;
  const candidates = [
    npmCli && join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  return candidates.find((c) => existsSync(c));
}

/**
 * Node's own headers when they are installed beside it (node-gyp would otherwise download them,
 * which fails offline); `npm run` passes the project's npmrc `nodedir` itself.
 */
function nodeHeaders() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {};
}

/** Removes build folders left by runs that were killed (older than an hour). */
function sweepStaleBuilds() {
  for (const f of readdirSync(cacheRoot())) {
    if (!f.startsWith('.build-')) continue;
    const p = join(cacheRoot(), f);
    try {
      if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
    } catch { /* another run's */ }
  }
}

function build() {
  const started = Date.now();
  need('pip is needed to fetch the tensorflow-cpu wheel', 'python3', ['-m', 'pip', '--version']);
  need('a C++ compiler is needed to build the addon', process.env.CXX || 'c++', ['--version']);
  need('make is needed to build the addon', 'make', ['--version']);
  const gyp = nodeGyp();
  if (!gyp) throw new CannotBuild('node-gyp not found (it ships with npm; run through `npm run native:build`)');

  mkdirSync(cacheRoot(), { recursive: true });
  sweepStaleBuilds();
  const tmp = mkdtempSync(join(cacheRoot(), '.build-'));
  try {
    say(`building in ${tmp}`);
    say(`downloading tensorflow-cpu==${TENSORFLOW_CPU} with pip`);
    const wheels = join(tmp, 'wheel');
    run(`pip cannot download tensorflow-cpu==${TENSORFLOW_CPU}`, 'python3', ['-m', 'pip', 'download', `tensorflow-cpu==${TENSORFLOW_CPU}`, '--no-deps', '--only-binary=:all:', '-d', wheels, '--quiet']);
    const wheel = readdirSync(wheels).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new CannotBuild(`pip downloaded no tensorflow-cpu==${TENSORFLOW_CPU} wheel`);

    say(`fetching @tensorflow/tfjs-node@${TFJS_NODE} (install scripts off: they would download libtensorflow)`);
    writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'rebasin-native-cache', private: true }));
    run(`npm cannot fetch @tensorflow/tfjs-node@${TFJS_NODE}`, 'npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--omit=dev', `@tensorflow/tfjs-node@${TFJS_NODE}`], { cwd: tmp });
    const pkg = packageIn(tmp);

    say(`extracting the TensorFlow C library and headers from ${wheel}`);
    const lib = join(pkg, 'deps', 'lib');
    const include = join(pkg, 'deps', 'include');
    mkdirSync(lib, { recursive: true });
    mkdirSync(include, { recursive: true });
    // The C API symbols live in libtensorflow_cc.so.2 (the wheel has no libtensorflow.so). The
    // headers: the addon's includes and what they include in turn, found in the wheel (14 files).
    const extract = String.raw`
import sys, zipfile, os, re, shutil
wheel, lib, include = sys.argv[1:4]
pre = 'tensorflow/include/'
quoted = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    def copy(member, dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with z.open(member) as src, open(dst, 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 20)
    for so in ('libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'):
        if 'tensorflow/' + so in names:
            copy('tensorflow/' + so, os.path.join(lib, so))
    todo = ['tensorflow/c/c_api.h', 'tensorflow/c/eager/c_api.h', 'tensorflow/c/tf_datatype.h', 'tensorflow/c/tf_status.h',
            'tensorflow/c/tf_tensor.h', 'tensorflow/core/platform/ctstring_internal.h']
    seen = set()
    while todo:
        h = todo.pop()
        if h in seen or pre + h not in names:
            continue
        seen.add(h)
        copy(pre + h, os.path.join(include, h))
        todo += [m.decode() for m in quoted.findall(z.read(pre + h))]
`;
    run('cannot extract the TensorFlow C library from the wheel', 'python3', ['-c', extract, join(wheels, wheel), lib, include]);
    for (const f of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) {
      if (!existsSync(join(lib, f))) throw new CannotBuild(`the tensorflow-cpu==${TENSORFLOW_CPU} wheel has no ${f}`);
    }
    symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so'));
    symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so.2'));
    symlinkSync('libtensorflow_framework.so.2', join(lib, 'libtensorflow_framework.so'));
    rmSync(wheels, { recursive: true, force: true });

    say('compiling the addon (node-pre-gyp rebuild --build-from-source, about a minute)');
    const preGyp = join(tmp, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp');
    run('the addon does not compile', process.execPath, [preGyp, 'rebuild', '--build-from-source', '--build-latest-napi-version-only'], {
      cwd: pkg,
      env: { ...process.env, npm_config_node_gyp: gyp, ...nodeHeaders() },
    });
    rmSync(join(pkg, 'build'), { recursive: true, force: true }); // object files; the addon is in lib/

    // One tfjs-core: the cached package must not be able to load a tfjs of its own.
    const scope = join(tmp, 'node_modules', '@tensorflow');
    for (const f of readdirSync(scope)) if (f !== 'tfjs-node') rmSync(join(scope, f), { recursive: true, force: true });

    say('checking that the `tensorflow` backend loads from it');
    const check = String.raw`
const { initBackend } = require('./src/engine/backend');
const tf = require('@tensorflow/tfjs-core');
initBackend('tensorflow').then((b) => {
  const c = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])).dataSync();
  if (tf.getBackend() !== 'tensorflow' || c.join() !== '19,22,43,50') throw new Error('wrong product ' + c.join());
  console.log(b);
}).catch((e) => { console.error('error: ' + e.message); process.exit(1); });`;
    run('the built backend does not load', process.execPath, ['--import', 'tsx', '-e', check], {
      cwd: root,
      env: { ...process.env, REBASIN_TFJS_NODE: pkg, TF_CPP_MIN_LOG_LEVEL: '2' },
    });

    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(join(tmp, 'rebasin-native.json'), JSON.stringify({
      tfjsNode: TFJS_NODE, tensorflowCpu: TENSORFLOW_CPU, platform: process.platform, arch: process.arch,
      node: process.version, builtAt: new Date().toISOString(), buildSeconds: seconds,
    }, null, 2) + '\n');
    try {
      renameSync(tmp, entry);
    } catch (e) {
      // Another build finished first: theirs is as good as ours.
      if (!existsSync(marker)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
    say(`built in ${seconds} s`);
    rmSync(join(cacheRoot(), 'last-failure.log'), { force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// Ctrl-C reaches the running step too; the step then fails, the temp folder is removed, and the
// exit code says we were stopped (Node would otherwise die at once and leave the temp folder).
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

try {
  if (existsSync(marker)) say(`already built, nothing to do`);
  else {
    if (existsSync(entry)) rmSync(entry, { recursive: true, force: true }); // incomplete: no marker
    build();
  }
  if (printDir) console.log(packageIn(entry));
  else console.error(`native:build: tfjs-node ${TFJS_NODE} on tensorflow-cpu ${TENSORFLOW_CPU} is in ${packageIn(entry)}\n  use it: REBASIN_TFJS_NODE=${packageIn(entry)}`);
} catch (e) {
  console.error(`native:build: cannot build the native backend: ${e instanceof CannotBuild ? e.message : e?.message ?? e}`);
  process.exit(1);
}
