/**
 * Entry of the compute worker (bundled to dist/worker.js, run as a worker_threads Worker).
 * Start-up: choose the tfjs backend given in `workerData.backend` (tfjs-node from
 * `workerData.nativeBackendPath` when given), then announce it with a
 * `ready` message (or an `error` with id 0 when it cannot load), then serve requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, quietNativeLogs } from './backend';
import { dispatch } from './dispatch';
import { serializeError } from './errors';
import type { FromWorker } from './protocol';
import { serveRequests } from './rpc';
import { validateBackendChoice } from './validate';
import { serveTokenizeJob, setTokenizeScript } from './tokenizeThread';

// stderr is captured by the caller (WorkerConnection) and routed to its log.
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('worker.js must run as a worker_threads Worker');
  const post = (msg: FromWorker): void => port.postMessage(msg);
  quietNativeLogs();
  let backend;
  try {
    const data: unknown = workerData;
    const fields = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
    const choice = validateBackendChoice(fields.backend ?? 'auto');
    const nativeDir = typeof fields.nativeBackendPath === 'string' && fields.nativeBackendPath !== '' ? fields.nativeBackendPath : undefined;
    backend = await initBackend(choice, log, nativeDir);
  } catch (e) {
    post({ type: 'error', id: 0, error: serializeError(e) });
    return;
  }
  serveRequests(port, dispatch, log);
  post({ type: 'ready', backend });
}

// A thread this worker started to tokenize raw text under a time budget runs that job only.
if (!serveTokenizeJob()) {
  setTokenizeScript(__filename);
  void main();
}
