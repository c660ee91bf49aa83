import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GroveError, type GroveErrorOptions } from "../core/errors.js";
import { toErrorResponse } from "./error-table.js";
import { meterOf } from "./gateway-hooks.js";
import { onResponseClosed } from "./response-closed.js";

/** What a request cancelled by a shutdown is answered (503, `shutting_down` is not a code of its own: `overloaded`). */
class ShuttingDownError extends GroveError {
  constructor(options: GroveErrorOptions = {}) {
    super("overloaded", "Grove is shutting down: the request was cancelled after the grace period; retry on another replica or after the restart", options);
  }
}

/** How long cancelled routes get to record their usage before their connections are closed. */
const SETTLE_LIMIT_MS = 5000;

/** What {@link GracefulShutdown.run} did. */
export interface ShutdownResult {
  /** Requests still in flight when the grace period ended, cancelled. */
  readonly cancelled: number;
}

const SHUTDOWN = "groveShutdown";

/**
 * Drains a server on SIGTERM/SIGINT: stops accepting, lets in-flight requests finish for a grace
 * period, then cancels the rest through the same signal a client disconnect fires (so generations
 * stop at the next step and routes record their usage as cancelled), answers them (a 503 body, or
 * one SSE error event on a stream) and closes their connections.
 */
export class GracefulShutdown {
  readonly #controller = new AbortController();
  readonly #inFlight = new Map<FastifyRequest, FastifyReply>();
  #onIdle: (() => void) | undefined;

  constructor(private readonly app: FastifyInstance) {
    const self: GracefulShutdown = this;
    app.decorate(SHUTDOWN, { getter: () => self });
    app.addHook("onRequest", async (request, reply) => {
      this.#inFlight.set(request, reply);
      onResponseClosed(reply.raw, () => {
        this.#inFlight.delete(request);
        if (this.#inFlight.size === 0) this.#onIdle?.();
      });
    });
    // A request cancelled by the shutdown ends as a 499 in its route; the client gets a 503 it can act on.
    app.addHook("onSend", async (_request, reply, payload) => {
      if (!this.#controller.signal.aborted || reply.statusCode !== 499) return payload;
      reply.code(503).header("content-type", "application/json; charset=utf-8").header("connection", "close");
      return JSON.stringify(toErrorResponse(new ShuttingDownError()).body);
    });
  }

  /** Fires when the grace period is over: every generation still running stops. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Requests being answered now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Stops accepting, waits up to `graceMs` for in-flight requests, then cancels the rest (and
   * calls `onGraceOver`, to cancel other work such as forge jobs); resolves once the server is closed.
   */
  async run(graceMs: number, onGraceOver?: () => Promise<void>): Promise<ShutdownResult> {
    const closed = this.app.close();
    const drained = this.#inFlight.size === 0 || (await this.#waitIdle(graceMs));
    if (drained) {
      this.app.server.closeIdleConnections();
      await closed;
      return { cancelled: 0 };
    }
    const cancelled = this.#inFlight.size;
    this.app.log.warn({ inFlight: cancelled, graceMs }, "grace period over: cancelling the requests still in flight");
    this.#controller.abort(new ShuttingDownError());
    await onGraceOver?.();
    // Routes settle their usage once the generation has stopped; wait for that, within a limit.
    const deadline = Date.now() + SETTLE_LIMIT_MS;
    while (Date.now() < deadline && [...this.#inFlight.keys()].some((request) => meterOf(request).pending)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const reply of this.#inFlight.values()) {
      const raw = reply.raw;
      if (!raw.headersSent || raw.writableEnded || raw.destroyed) continue;
      if (String(raw.getHeader("content-type") ?? "").startsWith("text/event-stream")) {
        raw.write(`data: ${JSON.stringify(toErrorResponse(new ShuttingDownError()).body)}\n\n`);
      }
      raw.end();
    }
    // Whatever is left (a body still being sent, a request still loading its model) is cut off.
    await this.#waitIdle(1000);
    this.app.server.closeAllConnections();
    await closed;
    return { cancelled };
  }

  /** True once no request is in flight; false when `ms` passed first. */
  #waitIdle(ms: number): Promise<boolean> {
    if (this.#inFlight.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#onIdle = undefined;
        resolve(false);
      }, ms);
      this.#onIdle = () => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        resolve(true);
      };
    });
  }
}

/** The shutdown of the server that answers `reply`, when it has one. */
export function shutdownOf(app: FastifyInstance): GracefulShutdown | undefined {
  return (app as unknown as Record<string, GracefulShutdown | undefined>)[SHUTDOWN];
}

/** The signal that cancels `reply`'s work when the server's grace period ends. */
export function shutdownSignalOf(reply: FastifyReply): AbortSignal | undefined {
  return shutdownOf(reply.server)?.signal;
}
