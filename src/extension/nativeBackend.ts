/**
 * "Re-Basin: Set up native backend": points `rebasin.nativeBackendPath` at a @tensorflow/tfjs-node
 * package, either one npm installs into the extension's global storage (the version of the
 * tfjs-core bundled in dist/worker.js, which it must match) or a folder the user already has
 * (on machines where tfjs-node's installer cannot download libtensorflow, the output of
 * `npm run native:build`). The folder is checked in a worker of its own before the setting
 * changes, so a broken one never replaces a working set-up.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { TFJS_NODE, tfjsNodeFolder } from '../engine/nativeFolder';
import type { Deps } from './deps';
import { CommandError } from './errors';
import { errorMessage } from './log';
import { reportFailure } from './runSupport';

/** The tfjs-core version inside dist/worker.js (scripts/build.mjs defines it). */
const BUNDLED_TFJS = process.env.REBASIN_BUNDLED_TFJS_VERSION ?? '';

type Choice = 'install' | 'folder' | 'off';

async function askHow(current: string | undefined): Promise<Choice | undefined> {
  const items: (vscode.QuickPickItem & { choice: Choice })[] = [
    {
      label: '$(cloud-download) Install with npm',
      detail: `npm installs ${TFJS_NODE}@${BUNDLED_TFJS || 'matching version'} into the extension's storage (downloads TensorFlow, a few hundred MB; needs npm on PATH)`,
      choice: 'install',
    },
    {
      label: '$(folder-opened) Use an existing folder…',
      detail: `A ${TFJS_NODE} package folder, or a folder with node_modules/${TFJS_NODE} (such as the one \`npm run native:build\` prints)`,
      choice: 'folder',
    },
  ];
  if (current) items.push({ label: '$(circle-slash) Stop using the native backend', detail: `Clear rebasin.nativeBackendPath (now ${current})`, choice: 'off' });
  const picked = await vscode.window.showQuickPick(items, { title: 'Re-Basin: Set up native backend', ignoreFocusOut: true });
  return picked?.choice;
}

/** Lines of npm's output as progress messages; resolves on exit 0, rejects with the last telling line. */
function runNpm(args: readonly string[], cwd: string, report: (line: string) => void, token: vscode.CancellationToken): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', [...args], { cwd, shell: process.platform === 'win32', env: { ...process.env, npm_config_update_notifier: 'false' } });
    const lines: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const raw of chunk.toString().split(/\r?\n|\r/)) {
        const line = raw.trim();
        if (!line) continue;
        lines.push(line);
        if (lines.length > 50) lines.shift();
        report(line.slice(0, 120));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const cancel = token.onCancellationRequested(() => child.kill());
    child.on('error', (e: NodeJS.ErrnoException) => {
      cancel.dispose();
      reject(new Error(e.code === 'ENOENT' ? 'npm is not on PATH: install Node.js, or choose "Use an existing folder…"' : `npm could not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      cancel.dispose();
      if (code === 0) return resolve();
      if (token.isCancellationRequested) return reject(new CommandError('Cancelled', `installing ${TFJS_NODE} cancelled`));
      const telling = [...lines].reverse().find((l) => /err/i.test(l)) ?? lines.at(-1) ?? `exit ${code ?? signal}`;
      reject(new Error(`npm install ${TFJS_NODE} failed: ${telling}`));
    });
  });
}

/**
 * Installs tfjs-node into <global storage>/native-<version>/ (into a temp folder renamed into
 * place when complete: a cancelled or failed install leaves nothing). Returns the package folder.
 */
async function install(storage: vscode.Uri): Promise<string> {
  if (!BUNDLED_TFJS) throw new Error('this build does not say which tfjs version it bundles; choose "Use an existing folder…"');
  const root = storage.fsPath;
  const final = path.join(root, `native-${BUNDLED_TFJS}`);
  if (existsSync(path.join(final, 'node_modules', '@tensorflow', 'tfjs-node', 'package.json'))) return tfjsNodeFolder(final);
  await vscode.workspace.fs.createDirectory(storage);
  const tmp = await mkdtemp(path.join(root, '.native-'));
  try {
    await writeFile(path.join(tmp, 'package.json'), JSON.stringify({ name: 'rebasin-native-backend', private: true }) + '\n');
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Re-Basin: installing ${TFJS_NODE}@${BUNDLED_TFJS}`, cancellable: true },
      (progress, token) =>
        runNpm(
          ['install', '--no-audit', '--no-fund', '--omit=dev', `${TFJS_NODE}@${BUNDLED_TFJS}`],
          tmp,
          (message) => progress.report({ message }),
          token,
        ),
    );
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return tfjsNodeFolder(final);
}

async function pickFolder(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title: `Folder of ${TFJS_NODE} (or one holding node_modules/${TFJS_NODE})`,
    canSelectFiles: false,
    canSelectFolders: true,
    openLabel: 'Use for the native backend',
  });
  return picked?.[0] ? tfjsNodeFolder(picked[0].fsPath) : undefined;
}

/** The command; resolves to the folder now configured (undefined when dismissed, cleared or failed). */
export function setUpNativeBackend(deps: Deps) {
  return async (): Promise<string | undefined> => {
    const config = vscode.workspace.getConfiguration('rebasin');
    try {
      const how = await askHow(config.get<string>('nativeBackendPath') || undefined);
      if (!how) return undefined;
      if (how === 'off') {
        await config.update('nativeBackendPath', undefined, vscode.ConfigurationTarget.Global);
        deps.log.info('native backend: rebasin.nativeBackendPath cleared');
        return undefined;
      }
      const folder = how === 'install' ? await install(deps.globalStorageUri) : await pickFolder();
      if (!folder) return undefined;
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Re-Basin: loading ${TFJS_NODE} from ${folder}` }, () =>
        deps.engine.checkNative(folder).catch((err: unknown) => {
          throw new Error(`${folder}: the native backend does not load there: ${errorMessage(err)}`);
        }),
      );
      // Global: a native addon is machine state, never a workspace's to choose.
      await config.update('nativeBackendPath', folder, vscode.ConfigurationTarget.Global);
      deps.log.info(`native backend: rebasin.nativeBackendPath = ${folder}`);
      await deps.engine.stop(); // the worker restarts with the new folder (the settings listener may not have run yet)
      const backend = await deps.engine.ensureBackend();
      void vscode.window.showInformationMessage(
        backend === 'tensorflow'
          ? `Re-Basin now computes on native TensorFlow (${folder}).`
          : `Re-Basin: the native backend is set up, but the worker runs on ${backend} (the rebasin.backend setting asks for it).`,
      );
      return folder;
    } catch (err) {
      reportFailure(deps.log, 'setting up the native backend', err);
      return undefined;
    }
  };
}
