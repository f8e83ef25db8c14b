/** Llama forward pass (token ids to logits; RMSNorm, rotary, grouped-query attention) for the equivalence check. */
import { transformerEngineFamily } from './transformer';

export const llama = transformerEngineFamily('llama');
