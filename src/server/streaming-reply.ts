import type { FastifyReply } from "fastify";

/**
 * What the streamed responses (SSE, NDJSON) share: the reply taken over from Fastify, 200 with
 * unbuffered, uncached headers sent at once, and writes that stop once the stream is closed.
 */
export abstract class StreamingReply {
  protected closed = false;

  constructor(
    protected readonly reply: FastifyReply,
    contentType: string,
    headers: Record<string, string> = {},
  ) {
    reply.hijack();
    reply.raw.writeHead(200, { "content-type": contentType, "cache-control": "no-cache", ...headers, "x-accel-buffering": "no" });
    reply.raw.flushHeaders();
  }

  /** Writes `text` unless the stream is closed. */
  protected write(text: string): void {
    if (!this.closed) this.reply.raw.write(text);
  }

  /** Ends the response, once. */
  protected close(): void {
    if (this.closed) return;
    this.reply.raw.end();
    this.closed = true;
  }
}
