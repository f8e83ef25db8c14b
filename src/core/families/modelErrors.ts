/**
 * Errors of the forward-pass builders: a config that is not valid, weights no builder understands,
 * or a forward pass that does not fit the memory budget (`OverBudget`, the one kind of core/memoryBudget.ts).
 */
export type ModelErrorKind = 'ConfigInvalid' | 'Unsupported' | 'ShapeMismatch' | 'OverBudget';

export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly kind: ModelErrorKind,
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}
