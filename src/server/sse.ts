import type { FastifyReply } from "fastify";
import { toErrorResponse } from "./error-table.js";

/**
 * A server-sent-events response in the OpenAI style: `data: <json>` events, an error as
 * one `data: {"error":…}` event, and `data: [DONE]` at the end.
 */
export class SseStream {
  private closed = false;

  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    reply.raw.flushHeaders();
  }

  send(data: unknown): void {
    if (!this.closed) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** One named event (`event: type`), as the Responses and Messages APIs stream them. */
  event(type: string, data: unknown): void {
    if (!this.closed) this.reply.raw.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends the error as one event and closes the stream, without `[DONE]`. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.send(toErrorResponse(error).body);
    this.reply.raw.end();
    this.closed = true;
  }

  /** Ends the stream; `[DONE]` closes OpenAI's streams, llama-server's own end without it. */
  end(options: { done?: boolean } = {}): void {
    if (this.closed) return;
    if (options.done ?? true) this.reply.raw.write("data: [DONE]\n\n");
    this.reply.raw.end();
    this.closed = true;
  }
}
