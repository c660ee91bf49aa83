/**
 * Preloaded into the server by `npm run soak` (`node --expose-gc --import …/soak-gc-hook.js`), never
 * by Grove itself: on SIGUSR2 the server's main thread runs a full garbage collection, so that the
 * soak reads a resident size without the garbage V8 has not collected yet. Without it the size at
 * rest depends on where in V8's collection cycle the load stopped (it swung by up to 85 MB between
 * reports of one run).
 */
import { isMainThread } from "node:worker_threads";

const collect = (globalThis as { gc?: () => void }).gc;
if (isMainThread && collect !== undefined) {
  process.on("SIGUSR2", () => collect());
}
