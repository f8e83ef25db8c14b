/** BERT's forward pass (masked-LM logits, or a task head built from shapes; src/engine/lm/bert.ts). */
import { bertLm } from '../lm/bert';
import type { EngineFamily } from './family';

export const bert: EngineFamily = { id: 'bert', lm: bertLm };
