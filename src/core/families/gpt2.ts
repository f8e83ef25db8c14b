/** GPT-2 (Hugging Face naming: `h.N.attn.c_attn`, Conv1D weights stored [in, out]). */
import { transformerFamily } from './transformer';

export const gpt2 = transformerFamily('gpt2', 'Transformer (GPT-2 naming)', ['gpt2']);
