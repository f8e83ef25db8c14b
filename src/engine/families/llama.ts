/** The Llama family's LM forward pass (RMSNorm, rotary, grouped-query attention; src/engine/lm/llama.ts). */
import { llamaLm } from '../lm/llama';
import type { EngineFamily } from './family';

export const llama: EngineFamily = { id: 'llama', lm: llamaLm };
