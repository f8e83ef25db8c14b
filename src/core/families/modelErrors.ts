/** Errors of the forward-pass builders: a config that is not valid, or weights no builder understands. */
export type ModelErrorKind = 'ConfigInvalid' | 'Unsupported' | 'ShapeMismatch';

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
