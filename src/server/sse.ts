import type { FastifyReply } from "fastify";
import { toErrorResponse } from "./error-table.js";
import { StreamingReply } from "./streaming-reply.js";

/**
 * A server-sent-events response in the OpenAI style: `data: <json>` events, an error as
 * one `data: {"error":…}` event, and `data: [DONE]` at the end.
 */
export class SseStream extends StreamingReply {
  constructor(reply: FastifyReply) {
    super(reply, "text/event-stream; charset=utf-8", { connection: "keep-alive" });
  }

  send(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** One named event (`event: type`), as the Responses and Messages APIs stream them. */
  event(type: string, data: unknown): void {
    this.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends the error as one event and closes the stream, without `[DONE]`. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.send(toErrorResponse(error).body);
    this.close();
  }

  /** Ends the stream; `[DONE]` closes OpenAI's streams, llama-server's own end without it. */
  end(options: { done?: boolean } = {}): void {
    if (this.closed) return;
    if (options.done ?? true) this.write("data: [DONE]\n\n");
    this.close();
  }
}
