// The extension-host test entry: VS Code (desktop via @vscode/test-electron, or code-server via
// test/harness/run-integration.ts) loads this compiled file and awaits run(). It runs every
// compiled *.test.js beside it with mocha's BDD interface (describe/it), then prints one
// `[mocha-summary]` line the code-server harness parses.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? testFiles(p) : f.endsWith('.test.js') ? [p] : [];
    })
    .sort();
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 120_000 });
  for (const f of testFiles(__dirname)) mocha.addFile(f);
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        const s = runner.stats;
        console.log(`[mocha-summary] passes=${s?.passes ?? 0} failures=${failures} pending=${s?.pending ?? 0}`);
        if (failures > 0) reject(new Error(`${failures} integration test(s) failed`));
        else resolve();
      });
    } catch (e) {
      console.error(e);
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}
