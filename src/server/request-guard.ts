import { isIP } from "node:net";
import cors from "@fastify/cors";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ForbiddenHostError, ForbiddenOriginError } from "../core/errors.js";

/** Options of {@link registerRequestGuard}. */
export interface RequestGuardOptions {
  /** True when the server listens on a loopback address: then only loopback `Host` names (and `allowedHosts`) are answered. */
  readonly loopbackOnly: boolean;
  /** Extra `Host` names answered (`--allowed-hosts`); `*` answers any. On a non-loopback bind a non-empty list is the only hosts answered, with loopback names. */
  readonly allowedHosts?: readonly string[];
  /** Origins allowed cross-site (`--cors-origins`), with CORS answers; `localhost` allows every loopback origin, `*` any. */
  readonly corsOrigins?: readonly string[];
}

/** Headers a cross-site client may read from a response. */
const EXPOSED_HEADERS = ["x-request-id", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests"];

/**
 * Keeps web pages from driving a local Grove (DNS rebinding, cross-site requests), before any
 * route, body parser or key check runs:
 * - **Host.** A loopback-bound server answers only `Host` names that are loopback (`localhost`,
 *   `*.localhost`, 127.0.0.0/8, `[::1]`) or listed in `allowedHosts`: a page on
 *   `rebind.attacker.example` whose name was re-pointed at 127.0.0.1 sends its own name and gets
 *   403. (Ollama's `allowedHostsMiddleware` does the same for its loopback binds.)
 * - **Origin.** A request that carries an `Origin` (every browser `fetch`, XHR and form post to
 *   another origin does) is refused with 403 unless the origin is the server's own (the web app)
 *   or in `corsOrigins`. Refused on every route and method, so no route can be forgotten; a
 *   top-level link to the web app sends no `Origin` and still opens it.
 * - **CORS.** Allowed foreign origins get `Access-Control-Allow-Origin` and preflight answers
 *   (`@fastify/cors`, status 200 as llama-server's); nothing else does, so the browser also
 *   withholds every response. A preflight from a refused origin is answered 200 with no CORS
 *   header, as llama-server answers it: to the browser that is a failed preflight, so the request
 *   itself is never sent (a 403 fails it the same way); no route runs.
 */
export function registerRequestGuard(app: FastifyInstance, options: RequestGuardOptions): void {
  const allowedHosts = new Set((options.allowedHosts ?? []).map((host) => host.toLowerCase()));
  const corsOrigins = new Set((options.corsOrigins ?? []).map((origin) => origin.toLowerCase()));
  const allowedOrigin = (origin: string) => corsOrigins.has("*") || corsOrigins.has(origin.toLowerCase()) || (corsOrigins.has("localhost") && isLoopbackOrigin(origin));
  const checkHost = options.loopbackOnly || allowedHosts.size > 0;
  app.addHook("onRequest", async (request, reply) => {
    if (checkHost && !allowedHosts.has("*")) {
      const hostname = hostnameOf(request.headers.host);
      if (hostname === undefined || !(isLoopbackName(hostname) || allowedHosts.has(hostname))) {
        throw new ForbiddenHostError(
          `This Grove answers ${options.loopbackOnly ? "loopback host names (localhost, 127.0.0.1, [::1])" : "the host names of --allowed-hosts"} only, not Host ${quoteHeader(request.headers.host)}: ` +
            "to reach it under another name (a reverse proxy, a tunnel), start it with --allowed-hosts NAME (GROVE_ALLOWED_HOSTS)",
        );
      }
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !isSameOrigin(origin, request) && !allowedOrigin(origin)) {
      if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
        request.log.warn({ origin: quoteHeader(origin) }, "CORS preflight from an origin --cors-origins does not list: answered without CORS headers");
        return reply.code(200).header("vary", "Origin").header("content-length", "0").send();
      }
      throw new ForbiddenOriginError(
        `Cross-site requests from ${quoteHeader(origin)} are refused: a web page must not drive this server. ` +
          "To let a browser app on that origin call the API, start Grove with --cors-origins ORIGIN (GROVE_CORS_ORIGINS)",
      );
    }
  });
  // CORS header names go out as llama-server writes them (`Access-Control-Allow-Origin`), not
  // lower-cased as fastify stores them: names are case-insensitive, but llama-server's clients
  // include its own test suite, which reads them from a case-sensitive dict.
  app.addHook("onSend", async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (!name.startsWith("access-control-") || value === undefined) continue;
      reply.removeHeader(name);
      reply.raw.setHeader(name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase()), value);
    }
    return payload;
  });
  if (corsOrigins.size > 0) {
    void app.register(cors, {
      origin: corsOrigins.has("*") ? "*" : (origin, callback) => callback(null, origin !== undefined && allowedOrigin(origin)),
      methods: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
      // llama-server answers preflights 200 and its clients' tests expect it; any 2xx passes a browser's check.
      optionsSuccessStatus: 200,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    });
  }
}

/** The host name of a `Host` header, lower-cased, without its port (`[::1]` keeps its brackets); undefined when malformed. */
export function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined || host === "" || host.length > 255) return undefined;
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/i.exec(host);
  return match === null ? undefined : match[1]!.toLowerCase().replace(/\.$/, "");
}

/** True for names that always mean this machine: `localhost`, `*.localhost` (RFC 6761), 127.0.0.0/8 and `[::1]`. */
export function isLoopbackName(hostname: string): boolean {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) return true;
  if (isIP(hostname) === 4) return hostname.startsWith("127.");
  return hostname === "[::1]" || hostname === "[0:0:0:0:0:0:0:1]";
}

/** True for an `http(s)` origin on this machine: `--cors-origins localhost` (llama-server's keyword; `http://localhost.evil.com` is not one). */
export function isLoopbackOrigin(origin: string): boolean {
  const match = /^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i.exec(origin);
  return match !== null && isLoopbackName(match[1]!.toLowerCase());
}

/** True when `origin` names the server the request reached (the web app's own requests): same host and port. */
function isSameOrigin(origin: string, request: FastifyRequest): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // `null` (sandboxed frames, file: pages) and garbage are foreign
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const host = request.headers.host;
  if (host === undefined) return false;
  const match = /^(.*?)(?::(\d{1,5}))?$/.exec(host.toLowerCase())!;
  const defaultPort = url.protocol === "https:" ? "443" : "80";
  return url.hostname.toLowerCase() === match[1] && (url.port || defaultPort) === (match[2] ?? defaultPort);
}

/** A header value for an error message: quoted, cut short, control characters escaped. */
function quoteHeader(value: string | undefined): string {
  if (value === undefined) return "(none)";
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}
