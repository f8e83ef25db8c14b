/** Thrown for a model the orthogonal symmetry does not (yet) handle; the message is one line. */
export class SymmetryUnsupported extends Error {
  override readonly name = 'SymmetryUnsupported';
}
