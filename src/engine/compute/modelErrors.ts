/** The model-config and forward-pass errors live with the families in core; re-exported for the engine's imports. */
export { ModelError, type ModelErrorKind } from '../../core/families/modelErrors';
