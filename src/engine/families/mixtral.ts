/** The Mixtral family's LM forward pass (Llama's decoder with a mixture of experts; src/engine/lm/mixtral.ts). */
import { mixtralLm } from '../lm/mixtral';
import type { EngineFamily } from './family';

export const mixtral: EngineFamily = { id: 'mixtral', lm: mixtralLm };
