import type { ServerResponse } from "node:http";

/**
 * Calls `listener` once when `response` closes (finished, or cut off by the client) — or on the
 * next tick when it has closed already. A plain `response.once("close")` added after an `await`
 * misses a close that came during the await (a client that left while its model loaded or its
 * body was parsed): the listener then never runs, and whatever it was to undo — a listener on a
 * long-lived signal, a subscription, a map entry — stays for the life of the server (issue 23's
 * memory growth under abandoned streams).
 */
export function onResponseClosed(response: ServerResponse, listener: () => void): void {
  if (response.closed || response.destroyed) process.nextTick(listener);
  else response.once("close", listener);
}
