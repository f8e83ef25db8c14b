/**
 * Layer rules (docs/architecture.md), checked by `npm run check:layers` and by `npm test`.
 * Type-only imports count (tsPreCompilationDeps), except where a rule says otherwise.
 */
/** `vscode` resolves to its type package (or nothing); tfjs to node_modules. */
const VSCODE = '^vscode$|(^|/)node_modules/(@types/)?vscode/';
const TFJS = '^@tensorflow/|(^|/)node_modules/@tensorflow/';

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
