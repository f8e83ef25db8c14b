// The extension as users install it: `npm run package` makes the .vsix (bundles, wasm binaries,
// media; no node_modules), code-server installs it with `--install-extension` into a fresh
// extensions folder, and in the workbench it activates and its compute worker starts on the wasm
// backend from the installed files alone (the status bar then shows the backend).
//
// Runs after code-server.test.ts in the install stage (files run one at a time, in name order),
// so code-server is in the cache by then; needs chromium (scripts/system-deps.mjs).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../harness/paths';
import { notification, runCommand, screenshot, startWorkbenchRetrying, type Workbench } from '../harness/workbench';

const MAX_BYTES = 8 * 1024 * 1024;
const MAX_FILES = 150;

const tmp = mkdtempSync(join(tmpdir(), 'rebasin-vsix-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `npm run --silent package -- --out <file>` in the clone (its prepublish builds dist/). */
function npmRunPackage(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'package', '--', '--out', out], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Member names of a zip file, from its central directory (a .vsix is a zip). */
function zipEntries(file: string): string[] {
  const zip = readFileSync(file);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, `${file}: no zip end-of-central-directory record`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50, `${file}: central directory entry ${i}`);
    const nameLength = zip.readUInt16LE(at + 28);
    names.push(zip.toString('utf8', at + 46, at + 46 + nameLength));
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return names;
}

describe('the .vsix, installed into code-server', () => {
  const vsix = join(tmp, 'rebasin.vsix');

  it(`packages the bundles, wasm binaries and media only (under 8 MB, at most ${MAX_FILES} files)`, { timeout: 10 * 60_000 }, async () => {
    const r = await npmRunPackage(vsix);
    assert.equal(r.code, 0, r.output);
    const bytes = statSync(vsix).size;
    const files = zipEntries(vsix).filter((n) => !n.endsWith('/'));
    console.log(`install: ${vsix}: ${(bytes / 1024 / 1024).toFixed(2)} MB, ${files.length} files`);
    assert.ok(bytes < MAX_BYTES, `${bytes} bytes`);
    assert.ok(files.length <= MAX_FILES, `${files.length} files`);
    assert.deepEqual(files.filter((n) => /node_modules|\/src\/|\.ts$|\.map$/.test(n)), [], 'no dependencies, sources or source maps');
    // Every webview the extension opens (all entries but the demo's report page) with its stylesheet.
    const webviews = readdirSync(join(repoRoot, 'webview')).filter((f) => f.endsWith('.entry.ts') && f !== 'report.entry.ts').map((f) => f.replace('.entry.ts', ''));
    const needed = [
      'extension/dist/extension.js',
      'extension/dist/worker.js',
      'extension/dist/wasm/tfjs-backend-wasm-simd.wasm',
      'extension/media/icons/rebasin.svg',
      'extension/media/webview.css',
      ...webviews.flatMap((w) => [`extension/dist/webview/${w}.js`, `extension/media/${w}.css`]),
    ];
    for (const f of needed) assert.ok(files.includes(f), `${f} is in the package`);
  });

  it('installs with --install-extension, activates, and computes on wasm from the installed files', { timeout: 10 * 60_000 }, async () => {
    assert.ok(existsSync(vsix), 'the package was made');
    let wb: Workbench | undefined;
    try {
      // A folder with a checkpoint in it (the harness waits for the explorer to list something).
      const workspace = join(tmp, 'workspace');
      mkdirSync(workspace, { recursive: true });
      copyFileSync(join(repoRoot, 'test', 'fixtures', 'hf', 'gpt2-tiny', 'model.safetensors'), join(workspace, 'gpt2-tiny.safetensors'));
      wb = await startWorkbenchRetrying({ workspace, installVsix: [vsix], extensionDevelopmentPath: null }, 'vsix');
      const installed = readdirSync(wb.server.dirs.extensions).filter((d) => d.startsWith('rebasin.rebasin-'));
      assert.equal(installed.length, 1, `installed: ${readdirSync(wb.server.dirs.extensions).join(', ')}`);
      const dir = join(wb.server.dirs.extensions, installed[0]);
      assert.ok(!existsSync(join(dir, 'node_modules')), 'the installed extension has no node_modules');
      assert.ok(existsSync(join(dir, 'dist', 'wasm', 'tfjs-backend-wasm.wasm')));

      // The command activates the extension (its activation events are editors and views) and
      // starts the worker from the installed dist/worker.js.
      await runCommand(wb.page, 'Re-Basin: Show compute backend', 120_000);
      await notification(wb.page, 'Re-Basin computes on WebAssembly', 180_000);
      const status = wb.page.locator('.statusbar-item', { hasText: 'Re-Basin: wasm' }).first();
      await status.waitFor({ state: 'visible', timeout: 30_000 });
    } catch (e) {
      if (wb) await screenshot(wb.page, 'vsix-install').catch(() => undefined);
      throw e;
    } finally {
      await wb?.close();
    }
  });
});
