// The one place a webview listens to the extension: every message is validated before use.
/**
 * Subscribes to window messages, validating each with `guard`. Invalid messages are logged with
 * `console.warn` (prefixed `[rebasin]`) and dropped, so one bad message never breaks the page.
 */
export function onMessages<T>(guard: (v: unknown) => T, handle: (m: T) => void, log: (text: string) => void = console.warn): void {
  window.addEventListener('message', (ev: MessageEvent<unknown>) => {
    let msg: T;
    try {
      msg = guard(ev.data);
    } catch (e) {
      log(`[rebasin] rejected message: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    try {
      handle(msg);
    } catch (e) {
      log(`[rebasin] failed to handle message: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
}
