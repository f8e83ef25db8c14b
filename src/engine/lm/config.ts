/** config.json of a language model: read in core (spec inference needs it too); re-exported for the engine's imports. */
export { defaultsNotice, parseLmConfig, readLmConfig, type LmActivation, type LmConfig, type RopeConfig } from '../../core/families/lmConfig';
