import assert from "node:assert/strict";
import { getEventListeners, once } from "node:events";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { clientGoneSignal } from "./generation.js";
import { GracefulShutdown } from "./graceful-shutdown.js";
import { onResponseClosed } from "./response-closed.js";

// Issue 23: a client that leaves while its route awaits (a model load) had closed its response
// before the route listened for "close"; the listener never ran, and the route's listener on the
// server's shutdown signal stayed for the life of the server, holding the request and its socket.

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/** After every nextTick callback queued so far has run. */
const ticksDone = () => new Promise<void>((resolve) => setImmediate(resolve));

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

test("a client gone before the route asks for its signal: the signal has fired and nothing stays on the shutdown signal", async () => {
  const app = Fastify({ logger: false });
  const shutdown = new GracefulShutdown(app);
  const entered = deferred<void>();
  const gone = deferred<AbortSignal>();
  app.get("/slow", async (_request, reply) => {
    const closed = once(reply.raw, "close");
    entered.resolve();
    // The route's await (a model load) outlives the client.
    await closed;
    gone.resolve(clientGoneSignal(reply));
    return reply;
  });
  const url = await listen(app);
  try {
    const client = new AbortController();
    const request = fetch(`${url}/slow`, { signal: client.signal }).catch(() => undefined);
    await entered.promise;
    client.abort();
    await request;
    const signal = await gone.promise;
    await ticksDone();
    assert.equal(signal.aborted, true, "the request's work is cancelled");
    assert.equal(getEventListeners(shutdown.signal, "abort").length, 0, "no listener left on the shutdown signal");
    assert.equal(shutdown.inFlight, 0);
  } finally {
    await app.close();
  }
});

test("a response that finishes normally: its signal never fires and its shutdown listener is removed", async () => {
  const app = Fastify({ logger: false });
  const shutdown = new GracefulShutdown(app);
  const signals: AbortSignal[] = [];
  app.get("/quick", async (_request, reply) => {
    signals.push(clientGoneSignal(reply));
    assert.equal(getEventListeners(shutdown.signal, "abort").length, 1, "listening while the response runs");
    return { ok: true };
  });
  const url = await listen(app);
  try {
    for (let index = 0; index < 3; index++) assert.deepEqual(await (await fetch(`${url}/quick`)).json(), { ok: true });
    // The last response's "close" may come just after its body reached the client.
    while (shutdown.inFlight > 0) await ticksDone();
    await ticksDone();
    assert.equal(signals.length, 3);
    assert.deepEqual(signals.map((signal) => signal.aborted), [false, false, false]);
    assert.equal(getEventListeners(shutdown.signal, "abort").length, 0);
  } finally {
    await app.close();
  }
});

test("onResponseClosed runs its listener once, whether the response closes later or had closed already", async () => {
  const app = Fastify({ logger: false });
  const calls = { before: 0, after: 0 };
  const done = deferred<void>();
  app.get("/", async (_request, reply) => {
    onResponseClosed(reply.raw, () => calls.before++);
    reply.raw.once("close", () => {
      onResponseClosed(reply.raw, () => {
        calls.after++;
        done.resolve();
      });
    });
    return "ok";
  });
  const url = await listen(app);
  try {
    assert.equal(await (await fetch(url)).text(), "ok");
    await done.promise;
    await ticksDone();
    assert.deepEqual(calls, { before: 1, after: 1 });
  } finally {
    await app.close();
  }
});
