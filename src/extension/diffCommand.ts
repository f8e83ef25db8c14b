/**
 * "Compare with…": how far another checkpoint is from this one, tensor by tensor and per layer,
 * optionally after aligning it (the engine's `diff` request, read in chunks in the compute
 * worker), shown in the diff view and kept in the run history (the side view's card reopens it).
 * No checkpoint is written.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DiffResult } from '../engine/protocol';
import type { DiffState } from '../../webview/protocol';
import { folderLabel, pickOne } from './checkpointPicker';
import type { Deps } from './deps';
import { DiffPanel } from './diffPanel';
import { otherSelected, reportFailure, targetUri, withCancellableProgress } from './runSupport';
import { readSettings } from './settings';
import { requireTrust } from './workspaceTrust';

/** Automation: skip the picks (`other`, `align`), and whether to open the panel (default true). */
export interface CompareOptions {
  readonly other?: vscode.Uri;
  readonly align?: boolean;
  readonly openPanel?: boolean;
}

function isOptions(x: unknown): x is CompareOptions {
  return typeof x === 'object' && x !== null && !(x instanceof vscode.Uri) && !Array.isArray(x);
}

async function pickAlign(a: string, b: string): Promise<boolean | undefined> {
  const picked = await vscode.window.showQuickPick(
    [
      { label: 'Compare as they are', detail: `${b} against ${a}, tensor by tensor`, align: false },
      { label: 'Align first, then compare', detail: `Permute ${b}'s hidden units onto ${a} (weight matching), and show both: naive and aligned`, align: true },
    ],
    { title: `Compare ${a} with ${b}`, ignoreFocusOut: true },
  );
  return picked?.align;
}

export function compareWith(deps: Deps) {
  return async (uri?: unknown, uris?: unknown, options?: unknown): Promise<{ result: DiffResult; runId: string } | undefined> => {
    const automated = isOptions(options);
    const opts: CompareOptions = automated ? options : {};
    try {
      const a = targetUri(uri) ?? (await pickOne('Compare with…', 'Pick the checkpoint to compare (A)'));
      if (!a) return undefined;
      const nameA = path.basename(a.fsPath);
      const b = opts.other ?? otherSelected(a, uris)[0] ?? (await pickOne(`Compare ${nameA} with…`, `Pick the checkpoint to compare ${nameA} with (B)`));
      if (!b) return undefined;
      const nameB = path.basename(b.fsPath);
      const align = opts.align ?? (await pickAlign(nameA, nameB));
      if (align === undefined) return undefined;
      if (align && !(await requireTrust('aligning checkpoints'))) return undefined;
      const settings = readSettings(a);
      const result = await withCancellableProgress(`Re-Basin: comparing ${nameA} and ${nameB}`, (report, signal) =>
        deps.engine.run(
          {
            kind: 'diff',
            a: a.fsPath,
            b: b.fsPath,
            ...(align
              ? {
                  align: true,
                  keepPerms: true,
                  method: 'weight' as const,
                  seed: settings.seed,
                  maxIter: settings.maxIterations,
                  ...(settings.memoryBudget !== undefined ? { memoryBudget: settings.memoryBudget } : {}),
                  ...(settings.modelConfig !== undefined ? { model: settings.modelConfig } : {}),
                }
              : {}),
          },
          { onProgress: (p) => report(p), signal },
        ),
      );
      deps.log.info(`compared ${nameA} and ${nameB}${align ? ' (aligned)' : ''} in ${result.seconds.toFixed(1)} s: relative change ${result.totals.relative ?? 'n/a'}${result.aligned ? `, aligned ${result.aligned.totals.relative ?? 'n/a'}` : ''}`);
      const state: DiffState = {
        title: `${nameA} vs ${nameB}${align ? ' (aligned)' : ''}`,
        a: { name: nameA, path: a.fsPath },
        b: { name: nameB, path: b.fsPath },
        result,
        ...(align && settings.modelConfig !== undefined ? { model: settings.modelConfig } : {}),
      };
      const run = await deps.history.add(
        {
          kind: 'diff',
          a: nameA,
          b: nameB,
          aPath: a.fsPath,
          bPath: b.fsPath,
          method: result.aligned?.method ?? 'naive',
          backend: deps.engine.backend ?? 'unknown',
          seconds: result.seconds,
          change: { naive: result.totals.relative, ...(result.aligned ? { aligned: result.aligned.totals.relative } : {}) },
          folder: folderLabel(b),
          ...(align ? { seed: settings.seed } : {}),
        },
        state,
      );
      if (opts.openPanel !== false) DiffPanel.show(deps, state);
      return { result, runId: run.id };
    } catch (err) {
      reportFailure(deps.log, 'comparing checkpoints', err);
      if (automated) throw err;
      return undefined;
    }
  };
}
