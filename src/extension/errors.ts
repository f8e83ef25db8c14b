/** The extension area's own error class: a rule the user's request breaks before any work runs. */
export type CommandErrorKind =
  /** A checkpoint was picked as both sides of a pair. */
  | 'SameCheckpoint'
  /** The method or command needs `rebasin.evaluationData` and none is set. */
  | 'NeedsData'
  /** A lambda outside [0, 1]. */
  | 'BadLambda'
  /** Too few checkpoints for the command. */
  | 'TooFewInputs'
  /** Two checkpoints do not have the same tensor names and shapes. */
  | 'Incompatible'
  /** The evaluation data does not suit the model (token ids for a classifier, labelled examples for a language model). */
  | 'DataMismatch'
  /** Cancelled after the output (`file`) had been written (the cancel came too late to stop it), or before anything was kept. */
  | 'Cancelled';

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly kind: CommandErrorKind,
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}
