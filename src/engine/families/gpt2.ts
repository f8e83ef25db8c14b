/** GPT-2 forward pass (token ids to logits) for the equivalence check. */
import { transformerEngineFamily } from './transformer';

export const gpt2 = transformerEngineFamily('gpt2');
