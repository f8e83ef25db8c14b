/** Llama and its namesakes (`layers.N.self_attn.q_proj`, RMSNorm, rotary embeddings, gated MLP). */
import { transformerFamily } from './transformer';

export const llama = transformerFamily('llama', 'Transformer (Llama naming)', ['llama', 'mistral', 'qwen2', 'qwen3']);
