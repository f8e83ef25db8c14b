/**
 * "Convert to safetensors": a PyTorch or Flax checkpoint written as `<name>.safetensors` beside
 * it (same tensor names, dtypes and layouts; src/core/formats/convert.ts), then opened in the
 * inspector. Nothing in the input is run; the output is written atomically and never over an input.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { convertToSafetensors } from '../core/formats';
import { pickOne } from './checkpointPicker';
import type { Deps } from './deps';
import { InspectorEditorProvider } from './inspectorEditor';
import { checkpointStem } from './settings';
import { confirmOutput, reportFailure, targetUri, withCancellableProgress } from './runSupport';

/** The command; resolves to the written file (undefined when cancelled or failed). `opts.out` skips the prompt (tests). */
export function convertCheckpoint(deps: Deps) {
  return async (uri?: unknown, _uris?: unknown, opts?: { out?: string }): Promise<string | undefined> => {
    const input = targetUri(uri) ?? (await pickOne('Convert to safetensors', 'Pick a PyTorch or Flax checkpoint to convert'));
    if (!input) return undefined;
    const file = input.fsPath;
    const out = opts?.out ?? path.join(path.dirname(file), `${checkpointStem(file)}.safetensors`);
    try {
      if (!(await confirmOutput(out, [file], opts?.out !== undefined ? true : undefined))) return undefined;
      const result = await withCancellableProgress(`Re-Basin: converting ${path.basename(file)} to safetensors`, (report, signal) => {
        report({ stage: 'convert', message: `Reading ${path.basename(file)} (nothing in it is run)` });
        return convertToSafetensors(file, out, signal);
      });
      deps.log.info(`converted ${file} (${result.format}${result.origin ? `, weights at ${result.origin}` : ''}) to ${out}: ${result.tensors} tensors`);
      await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(out), InspectorEditorProvider.viewType);
      return out;
    } catch (err) {
      reportFailure(deps.log, `converting ${path.basename(file)}`, err);
      return undefined;
    }
  };
}
