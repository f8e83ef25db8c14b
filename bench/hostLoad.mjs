// Extension-host start-up cost: the time to load the host bundle (what activation pays before
// `activate()` runs) and the RSS it adds, with `vscode` stubbed, in fresh Node processes; and
// which @tensorflow modules it pulls in (none expected: tfjs loads only in workers).
// Run: node bench/hostLoad.mjs [dist/extension.js] [runs]   (after `npm run build`)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const bundle = resolve(process.argv[2] ?? 'dist/extension.js');
const runs = Number(process.argv[3] ?? 5);

// The names the bundle reads off \`vscode\` (esbuild's interop copies own keys, so the stub lists them).
const names = [...new Set([...readFileSync(bundle, 'utf8').matchAll(/\bvscode\d*\.([A-Za-z_]\w*)/g)].map((m) => m[1]))];

const child = `
const Module = require('module');
const load = Module._load;
const names = ${JSON.stringify(names)};
const stub = new Proxy(function () { 'use strict'; }, {
  get: (t, k) => (k === Symbol.toPrimitive ? () => '' : k === 'prototype' ? {} : stub),
  apply: () => stub,
  construct: () => stub,
  ownKeys: () => [...names, 'prototype'],
  getOwnPropertyDescriptor: (t, k) => (k === 'prototype' ? Reflect.getOwnPropertyDescriptor(t, k) : { value: stub, configurable: true, enumerable: true, writable: true }),
});
Module._load = function (request, ...rest) { return request === 'vscode' ? stub : load.call(this, request, ...rest); };
const rss0 = process.memoryUsage().rss;
const t0 = process.hrtime.bigint();
require(${JSON.stringify(bundle)});
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const tf = Object.keys(require.cache).filter((f) => f.includes('@tensorflow')).map((f) => f.split('@tensorflow/')[1].split('/')[0]);
process.stdout.write(JSON.stringify({ ms, rss: process.memoryUsage().rss, added: process.memoryUsage().rss - rss0, tf: [...new Set(tf)] }));
`;

const results = [];
for (let i = 0; i < runs; i++) results.push(JSON.parse(execFileSync(process.execPath, ['-e', child], { encoding: 'utf8' })));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 2 ** 20).toFixed(1);
console.log(`${bundle}: load ${median(results.map((r) => r.ms)).toFixed(0)} ms (median of ${runs}), RSS ${mb(median(results.map((r) => r.rss)))} MB (+${mb(median(results.map((r) => r.added)))} MB), @tensorflow modules: ${results[0].tf.join(', ') || 'none'}`);
