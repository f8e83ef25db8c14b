/**
 * Layer rules (docs/architecture.md), checked by `npm run check:layers` and by `npm test`.
 * Type-only imports count (tsPreCompilationDeps), except where a rule says otherwise.
 */
/** `vscode` resolves to its type package (or nothing); tfjs to node_modules. */
const VSCODE = '^vscode$|(^|/)node_modules/(@types/)?vscode/';
const TFJS = '^@tensorflow/|(^|/)node_modules/@tensorflow/';
/**
 * The engine's inner order, bottom up: computations (compute/, lm/, families/) < matching methods
 * (methods/) < request handlers (handlers/) < dispatch (the dispatcher, the barrier job, the
 * worker and the client with their pool and RPC). A layer imports only layers below it.
 */
const ENGINE_METHODS = '^src/engine/methods/';
const ENGINE_HANDLERS = '^src/engine/handlers/';
const ENGINE_DISPATCH = '^src/engine/(dispatch|barrierJob|worker|client|pool|rpc)\\.ts$';

module.exports = {
  forbidden: [
    {
      name: 'core-imports-nothing-above',
      comment: 'src/core is the bottom layer: no engine, extension, cli, demo or webview code.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^(src/(engine|extension|cli|demo)/|webview/)' },
    },
    {
      name: 'core-no-vscode-no-tfjs',
      comment: 'src/core is pure TypeScript: neither vscode nor tfjs.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: VSCODE + '|' + TFJS },
    },
    {
      name: 'only-extension-imports-vscode',
      severity: 'error',
      from: { path: '^(src|webview|shared)/', pathNot: '^src/extension/' },
      to: { path: VSCODE },
    },
    {
      name: 'webview-imports-no-src',
      comment: 'webview/ runs in the browser: only type-only imports of the engine protocol from src/.',
      severity: 'error',
      from: { path: '^webview/' },
      to: { path: '^src/', pathNot: '^src/engine/protocol\\.ts$' },
    },
    {
      name: 'webview-protocol-imports-type-only',
      severity: 'error',
      from: { path: '^webview/' },
      to: { path: '^src/engine/protocol\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'shared-is-pure',
      comment: 'shared/ (pixel math, message schemas, the Float32-in-JSON codec) runs in Node and in the browser: it imports nothing of ours outside shared/, no vscode, no tfjs, no Node built-ins.',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(src|webview)/|' + VSCODE + '|' + TFJS },
    },
    {
      name: 'shared-no-node-builtins',
      severity: 'error',
      from: { path: '^shared/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'engine-imports-no-extension-no-cli',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: '^src/(extension|cli)/' },
    },
    {
      name: 'engine-compute-imports-no-method-handler-dispatch',
      comment: 'Computations (compute/, lm/, families/) are the engine\'s bottom layer: no matching method, handler or dispatcher.',
      severity: 'error',
      from: { path: '^src/engine/(compute|lm|families)/' },
      to: { path: [ENGINE_METHODS, ENGINE_HANDLERS, ENGINE_DISPATCH].join('|') },
    },
    {
      name: 'engine-methods-import-no-handler-dispatch',
      comment: 'Matching methods run inside the align handler: they import computations, never a handler or the dispatcher.',
      severity: 'error',
      from: { path: ENGINE_METHODS },
      // EXCEPTION for the lead: methods/lmActivation.ts takes `tokenInput` (the token data of an LM
      // request, cached per file) from handlers/evaluateLmPath.ts. It belongs under lm/, which the
      // LM-family refactor (issue 20, items 1-2) rewrites: move it there and drop this pathNot.
      to: { path: ENGINE_HANDLERS + '|' + ENGINE_DISPATCH, pathNot: '^src/engine/handlers/evaluateLmPath\\.ts$' },
    },
    {
      name: 'engine-handlers-import-no-dispatch',
      comment: 'Handlers are routed by dispatch.ts; they take their context from handlerContext.ts, never from the dispatcher.',
      severity: 'error',
      from: { path: ENGINE_HANDLERS },
      to: { path: ENGINE_DISPATCH },
    },
    {
      name: 'engine-protocol-imports-only-schemas',
      comment: 'protocol.ts is the wire types derived from the schemas (the webviews import it): no dispatcher, handler or computation behind it.',
      severity: 'error',
      from: { path: '^src/engine/protocol\\.ts$' },
      to: { path: '^src/engine/', pathNot: '^src/engine/schemas/' },
    },
    {
      name: 'cli-imports-no-extension',
      comment: 'The CLI runs without VS Code: nothing of src/extension (shared code goes to src/core or src/engine).',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/extension/' },
    },
    {
      name: 'lm-imports-no-compute',
      comment: 'src/engine/lm (transformer blocks, LM forward passes, their evaluation) sits below src/engine/compute: compute may use lm, never the reverse.',
      severity: 'error',
      from: { path: '^src/engine/lm/' },
      to: { path: '^src/engine/compute/' },
    },
    {
      name: 'no-cycles',
      comment: 'Type-only imports are erased at run time and do not count.',
      severity: 'error',
      from: { path: '^(src|webview|shared)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
