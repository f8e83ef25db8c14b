/**
 * Whether checkpoints ticked together can be merged, from their layouts (tensor names and shapes,
 * numbered by checkpointPicker's layoutHints; -1: unreadable). No vscode: unit-tested.
 */
export interface Ticked {
  readonly name: string;
  readonly layout: number;
}

/** Why the selection cannot be merged, in one line, or undefined when it can. */
export function selectionProblem(selected: readonly Ticked[]): string | undefined {
  const unreadable = selected.find((s) => s.layout < 0);
  if (unreadable) return `${unreadable.name} cannot be read`;
  const layouts = [...new Set(selected.map((s) => s.layout))];
  if (layouts.length < 2) return undefined;
  const names = layouts.map((l) => selected.find((s) => s.layout === l)?.name ?? '');
  return `${names.join(' and ')} have different tensor names or shapes (layouts ${layouts.map((l) => l + 1).join(', ')}): pick checkpoints of one layout`;
}
