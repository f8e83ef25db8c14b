/** GPT-2's LM forward pass (src/engine/lm/gpt2.ts). */
import { gpt2Lm } from '../lm/gpt2';
import type { EngineFamily } from './family';

export const gpt2: EngineFamily = { id: 'gpt2', lm: gpt2Lm };
