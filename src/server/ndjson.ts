import type { FastifyReply } from "fastify";
import { toErrorResponse } from "./error-table.js";
import { StreamingReply } from "./streaming-reply.js";

/**
 * A newline-delimited JSON response in Ollama's style: one JSON object a line, and an error
 * during the stream as one `{"error": "…"}` line before the response ends.
 */
export class NdjsonStream extends StreamingReply {
  constructor(reply: FastifyReply) {
    super(reply, "application/x-ndjson");
  }

  send(data: unknown): void {
    this.write(`${JSON.stringify(data)}\n`);
  }

  /** Sends the error as one line and ends the response. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.send({ error: toErrorResponse(error).body.error.message });
    this.end();
  }

  end(): void {
    this.close();
  }
}
