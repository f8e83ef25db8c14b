/**
 * What a matching method is outside the compute worker: its id, how the extension's pick list
 * shows it, whether it needs data, and its options with their defaults and rules. The CLI's
 * flags, the extension's pick list and settings, and the engine's request validation read
 * these; the method's computation is its engine module (src/engine/methods/).
 */
import * as v from 'valibot';

/** One numeric option: its default and the rule the CLI, the settings and the engine apply. */
export interface NumberOption {
  readonly default: number;
  readonly integer: boolean;
  readonly min: number;
  /** Inclusive upper bound (absent: none). */
  readonly max?: number;
  /** Whether `min` itself is allowed (false: strictly greater). */
  readonly minInclusive?: boolean;
  /** CLI flag (without `--`). */
  readonly flag: string;
  /** Request field. */
  readonly field: string;
  readonly help: string;
}

/** Which models with an orthogonal symmetry a method searches it for (see `MethodInfo.orthogonal`). */
export type OrthogonalReach = 'every model' | 'language models';

export interface MethodInfo {
  readonly id: 'weight' | 'activation' | 'ste';
  readonly label: string;
  /** Short note beside the label in the pick list. */
  readonly description: string;
  /** One line under it: what the method does, with the paper section. */
  readonly detail: string;
  /** Runs both models on data (the request must carry `data`). */
  readonly needsData: boolean;
  /**
   * Also searches the orthogonal symmetry (`--symmetry orthogonal`, core/symmetry/) of the models
   * that have one: every such model ('every model': GPT-2, the Llama family, Mixtral, ViT), or
   * language models only ('language models': the orthogonal STE trains on token data).
   */
  readonly orthogonal?: OrthogonalReach;
  /** Method-specific options (besides the shared `seed` and `maxIter`), grouped in the request under `optionsField`. */
  readonly options: readonly NumberOption[];
  readonly optionsField?: string;
}

/** The option's schema (valibot), built from its declared rule. */
export function optionSchema(o: NumberOption): v.GenericSchema<unknown, number> {
  const rule = optionRule(o);
  return v.pipe(
    v.number(rule),
    v.finite(rule),
    v.check((n) => !o.integer || Number.isSafeInteger(n), rule),
    v.check((n) => (o.minInclusive === false ? n > o.min : n >= o.min), rule),
    v.check((n) => o.max === undefined || n <= o.max, rule),
  );
}

/** Whether `v` satisfies `o` (the one rule every front end applies). */
export function optionAccepts(o: NumberOption, value: unknown): boolean {
  return v.safeParse(optionSchema(o), value).success;
}

/** The rule in words, for error messages ("an integer in [0, 4294967295]"). */
export function optionRule(o: NumberOption): string {
  const kind = o.integer ? 'an integer' : 'a number';
  const lo = o.minInclusive === false ? `> ${o.min}` : `>= ${o.min}`;
  return o.max === undefined ? `${kind} ${lo}` : `${kind} in [${o.min}, ${o.max}]`;
}
