import type { FastifyReply } from "fastify";
import { toErrorResponse } from "./error-table.js";

/**
 * A newline-delimited JSON response in Ollama's style: one JSON object a line, and an error
 * during the stream as one `{"error": "…"}` line before the response ends.
 */
export class NdjsonStream {
  private closed = false;

  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "application/x-ndjson",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    reply.raw.flushHeaders();
  }

  send(data: unknown): void {
    if (!this.closed) this.reply.raw.write(`${JSON.stringify(data)}\n`);
  }

  /** Sends the error as one line and ends the response. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.send({ error: toErrorResponse(error).body.error.message });
    this.end();
  }

  end(): void {
    if (this.closed) return;
    this.reply.raw.end();
    this.closed = true;
  }
}
