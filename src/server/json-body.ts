import { isUtf8 } from "node:buffer";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { InvalidRequestError, UnsupportedMediaTypeError } from "../core/errors.js";

/**
 * How deep a request body's arrays and objects may nest. Real requests stay far below it (a chat
 * with tools and a JSON schema nests about 10 levels); a 100,000-deep body is refused by one
 * linear scan before `JSON.parse` and the schema walk could spend the event loop on it.
 */
export const MAX_JSON_DEPTH = 128;

/** Media types the JSON routes take: `application/json` and `application/*+json`, any parameters. */
export const JSON_MEDIA_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;.*)?$/i;

/**
 * Scans JSON text once, before it is parsed, for what Grove refuses in every body:
 * nesting deeper than `maxDepth`, and `\u` escapes that leave a lone UTF-16 surrogate (half of a
 * pair, which no Unicode text holds and a tokenizer would turn into replacement bytes). Strings are
 * skipped escape-aware, so brackets inside them do not count. Syntax is left to `JSON.parse`.
 *
 * @returns a description of the first problem, or undefined
 */
export function scanJsonText(text: string, maxDepth = MAX_JSON_DEPTH): string | undefined {
  let depth = 0;
  const length = text.length;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x5b /* [ */ || code === 0x7b /* { */) {
      if (++depth > maxDepth) return `nests deeper than ${maxDepth} levels of arrays and objects`;
    } else if (code === 0x5d /* ] */ || code === 0x7d /* } */) {
      depth--;
    } else if (code === 0x22 /* " */) {
      // Inside a string: only escapes matter.
      for (index++; index < length; index++) {
        const inner = text.charCodeAt(index);
        if (inner === 0x22) break;
        if (inner !== 0x5c /* \ */) continue;
        index++;
        if (text.charCodeAt(index) !== 0x75 /* u */) continue;
        const unit = Number.parseInt(text.slice(index + 1, index + 5), 16);
        index += 4;
        if (unit >= 0xdc00 && unit <= 0xdfff) return `holds a lone UTF-16 surrogate (\\u${unit.toString(16)}) at character ${index - 5}`;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const next = text.startsWith("\\u", index + 1) ? Number.parseInt(text.slice(index + 3, index + 7), 16) : Number.NaN;
          if (!(next >= 0xdc00 && next <= 0xdfff)) return `holds a lone UTF-16 surrogate (\\u${unit.toString(16)}) at character ${index - 5}`;
          index += 6;
        }
      }
    }
  }
  return undefined;
}

/**
 * Replaces fastify's body parsers for the whole app: JSON media types only (`application/json`,
 * `application/*+json`; anything else is 415, so a browser's form or `text/plain` post, which
 * needs no CORS preflight, cannot reach a route), with the body checked before it is parsed:
 * valid UTF-8 (invalid bytes are a 400, not silently replaced), no lone surrogates, nesting within
 * {@link MAX_JSON_DEPTH}; then parsed with fastify's own prototype-poisoning checks.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_MEDIA_TYPE, { parseAs: "buffer" }, (request, body, done) => {
    try {
      done(null, parseJsonBody(request, body as Buffer, parse));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

/**
 * The JSON parser of {@link registerJsonBodyParser}, for a scope that adds content types of its
 * own (the Ollama routes' `curl -d` bodies): the same checks, then the same parse.
 */
export function jsonBodyParser(app: FastifyInstance): (request: FastifyRequest, body: Buffer | string, done: (error: Error | null, value?: unknown) => void) => void {
  const parse = app.getDefaultJsonParser("error", "error");
  return (request, body, done) => {
    try {
      done(null, parseJsonBody(request, typeof body === "string" ? Buffer.from(body) : body, parse));
    } catch (error) {
      done(error as Error, undefined);
    }
  };
}

type DefaultJsonParser = ReturnType<FastifyInstance["getDefaultJsonParser"]>;

function parseJsonBody(request: FastifyRequest, body: Buffer, parse: DefaultJsonParser): unknown {
  if (!isUtf8(body)) throw new InvalidRequestError("The request body is not valid UTF-8: send JSON text encoded as UTF-8");
  const text = body.toString("utf8");
  const problem = scanJsonText(text);
  if (problem !== undefined) throw new InvalidRequestError(`The request body ${problem}`);
  let result: unknown;
  let failure: Error | null = null;
  parse(request, text, (error, value) => {
    failure = error;
    result = value;
  });
  if (failure !== null) throw failure;
  return result;
}

/** The 415 every JSON route answers to a body of another type (a form, text/plain, none named). */
export function unsupportedMediaType(cause: unknown): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError("This route takes a JSON body: send it with the header content-type: application/json", cause === undefined ? {} : { cause });
}

/** The largest declared body Grove reads and discards after answering 413, so the client can read the answer. */
const DRAIN_LIMIT = 1 << 30;

/**
 * After a 413, lets the rest of the body be read and discarded on a kept-alive connection instead
 * of closing on it: closing a socket with unread bytes sends a TCP reset, and a client still
 * sending then often loses the 413 it was sent (nginx's "lingering close" answers the same
 * problem). Only for a declared `content-length` up to {@link DRAIN_LIMIT}; the server's request
 * timeout bounds how long it may take. A chunked or larger body keeps fastify's `Connection: close`.
 */
export function drainRejectedBody(request: FastifyRequest, reply: { removeHeader(name: string): unknown }): void {
  const raw = request.raw;
  if (raw.complete) return;
  const declared = Number(raw.headers["content-length"]);
  if (!(declared <= DRAIN_LIMIT)) return;
  reply.removeHeader("connection");
  raw.unpipe();
  raw.removeAllListeners("data");
  raw.resume();
}
