/** `backend` request: which tfjs backend this worker computes on. */
import { currentBackend } from '../backend';
import type { BackendRequest, BackendResult } from '../protocol';

export async function backendHandler(_req: BackendRequest): Promise<BackendResult> {
  return { backend: currentBackend() };
}
