/**
 * Evaluation data chosen per run and remembered per model: one workspace may hold an MLP and a
 * language model, which need different data. The choice for a checkpoint is kept in the
 * workspace state (keyed by its path); the `rebasin.evaluationData` setting is the default
 * offered when a model has none. The data is checked against the model before anything runs.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointName } from '../core/checkpointName';
import { dataFitProblem, defaultDataFor, type DefaultData } from '../core/data';
import { CommandError } from './errors';

const KEY = 'rebasin.evaluationDataByModel';

/** `null`: "no data" was chosen for that model (align without a loss curve). */
type Choice = string | null;

export class DataChoices {
  constructor(private readonly memento: vscode.Memento) {}

  /** The data last chosen for `model`; undefined when never chosen. */
  remembered(model: string): Choice | undefined {
    const all = this.memento.get<Record<string, Choice>>(KEY, {});
    return Object.prototype.hasOwnProperty.call(all, model) ? all[model] : undefined;
  }

  async remember(model: string, data: Choice): Promise<void> {
    const all = { ...this.memento.get<Record<string, Choice>>(KEY, {}) };
    all[model] = data;
    await this.memento.update(KEY, all);
  }
}

interface DataItem extends vscode.QuickPickItem {
  readonly data?: Choice;
  readonly browse?: true;
}

export interface DataPick {
  /** The checkpoint whose choice is remembered (B of an alignment). */
  readonly model: vscode.Uri;
  /** The checkpoint whose kind decides the data (A: the engine evaluates by the reference). */
  readonly evaluated: vscode.Uri;
  /** The setting's data, offered when nothing is remembered. */
  readonly setting?: string;
  /** False: "No data" is offered (align without a curve). */
  readonly required: boolean;
  readonly title: string;
  /** Why the default data was not used (it does not suit the model): shown as the pick's placeholder. */
  readonly problem?: string;
}

/**
 * Asks which data this run uses: the choice remembered for the model first, then the setting,
 * "Choose a file or folder…" and (when optional) "No data". A pick that does not fit the model
 * is refused with its cause and the pick shown again. Resolves to the data path, `null` for no
 * data, or undefined when dismissed.
 */
export async function pickEvaluationData(choices: DataChoices, p: DataPick): Promise<Choice | undefined> {
  const remembered = choices.remembered(p.model.fsPath);
  const name = checkpointName(p.model.fsPath);
  for (;;) {
    const items: DataItem[] = [];
    const seen = new Set<string>();
    const add = (data: string, description: string): void => {
      if (seen.has(data)) return;
      seen.add(data);
      items.push({ label: `$(database) ${path.basename(data)}`, description, detail: vscode.workspace.asRelativePath(data), data });
    };
    if (typeof remembered === 'string') add(remembered, `used last time for ${name}`);
    if (p.setting) add(p.setting, 'the rebasin.evaluationData setting');
    if (!p.required) {
      const none: DataItem = { label: '$(circle-slash) No data', description: 'align only: no loss curve', data: null };
      if (remembered === null) items.unshift({ ...none, description: `${none.description} (used last time for ${name})` });
      else items.push(none);
    }
    items.push({ label: '$(folder-opened) Choose a file or folder…', detail: 'IDX folder, x/y .safetensors/.npz/.npy; language models: token ids or .txt/.jsonl text', browse: true, alwaysShow: true });
    const placeHolder = p.problem ? `${p.problem}. Pick other data for ${name}` : `Evaluation data for ${name}`;
    const picked = await vscode.window.showQuickPick(items, { title: p.title, placeHolder, ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true });
    if (!picked) return undefined;
    let data: Choice | undefined = picked.data;
    if (picked.browse) {
      const chosen = await vscode.window.showOpenDialog({ title: p.title, canSelectFiles: true, canSelectFolders: true, canSelectMany: false, openLabel: 'Use as evaluation data' });
      if (!chosen?.[0]) continue;
      data = chosen[0].fsPath;
    }
    if (data === undefined) continue;
    if (data !== null) {
      const problem = await dataFitProblem(data, p.evaluated.fsPath);
      if (problem) {
        void vscode.window.showWarningMessage(`Re-Basin: ${problem}.`);
        continue;
      }
    }
    await choices.remember(p.model.fsPath, data);
    return data;
  }
}

/**
 * The data of a run before any pick: `given` (automation; `null`: none), else the choice
 * remembered for `model`, else the setting; checked against `evaluated`. Given data that does not
 * fit throws; remembered or configured data that does not fit is dropped, with the cause.
 */
export async function defaultData(choices: DataChoices, model: vscode.Uri, evaluated: vscode.Uri, given: vscode.Uri | null | undefined, setting: string | undefined): Promise<DefaultData> {
  const found = await defaultDataFor({ evaluated: evaluated.fsPath, given: given === null ? null : given?.fsPath, remembered: choices.remembered(model.fsPath), setting });
  if (found.source === 'given' && found.problem) throw new CommandError('DataMismatch', found.problem, given?.fsPath);
  return found;
}
