import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import {
  ConfigError,
  GroveError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  UnauthorizedError,
} from "../core/errors.js";
import type { Gateway } from "../gateway/gateway.js";
import { registerGatewayHooks } from "./gateway-hooks.js";
import { registerKeyRoutes } from "./routes/keys.js";
import { registerUsageRoutes } from "./routes/usage.js";
import type { Engine } from "../engine/engine.js";
import type { Logger } from "../logging/logger.js";
import { toErrorResponse } from "./error-table.js";
import { EngineCatalog, type ModelCatalog } from "../serving/model-catalog.js";
import type { ModelStore } from "../store/model-store.js";
import type { ResultStore } from "../results/result-store.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerChatCompletionsRoute } from "./routes/chat-completions.js";
import { registerCompletionsRoute } from "./routes/completions.js";
import { registerEmbeddingsRoute } from "./routes/embeddings.js";
import { registerFileRoutes } from "./routes/files.js";
import { registerFineTuningRoutes } from "./routes/fine-tuning.js";
import { registerForgeRoutes, type ForgeServices } from "./routes/forge.js";
import { registerModelRoutes } from "./routes/models.js";
import { registerOllamaRoutes } from "./routes/ollama.js";
import type { HubClient } from "../store/hub/hub-client.js";
import { registerPlanRoutes } from "./routes/plan.js";
import { registerResultRoutes } from "./routes/results.js";
import { registerAliasRoutes } from "./routes/aliases.js";
import { registerLoadedRoute } from "./routes/loaded.js";
import { registerLlamaNativeRoutes } from "./routes/llama-native.js";
import { registerMessagesRoutes } from "./routes/messages.js";
import { registerResponsesRoute } from "./routes/responses.js";
import { authorizationOf, isKeyedPath, isOllamaPath, registerDefaultModel, rewriteUnversioned } from "./api-paths.js";
import type { ModelPool } from "../serving/model-pool.js";
import { GracefulShutdown } from "./graceful-shutdown.js";
import { GroveMetrics, registerMetrics } from "./metrics.js";
import { registerUpstreamProxy } from "./upstream-proxy.js";
import type { UpstreamRouter } from "../serving/upstream-router.js";
import { registerWebApp, sendWebAppFallback } from "./web-app.js";
import { drainRejectedBody, registerJsonBodyParser, unsupportedMediaType } from "./json-body.js";
import { registerRequestGuard } from "./request-guard.js";

export interface ServerOptions {
  readonly engine: Engine;
  /** Which names clients may use; default: exactly the models the engine has loaded. */
  readonly catalog?: ModelCatalog;
  /** The model store behind the `/api` admin routes; without it they are absent. */
  readonly store?: ModelStore;
  /**
   * The measurements behind `/api/leaderboard`, `/api/front`, `/api/plan`, `/api/results`, a
   * model's results and alias migrations, opened once by the composition root; without it those
   * answer 409.
   */
  readonly results?: ResultStore;
  /** Largest accepted body in bytes. @default 1048576 */
  readonly bodyLimit?: number;
  /**
   * The job runner and training files behind `/api/forge/*`, `/v1/files` and
   * `/v1/fine_tuning/*`; without them those routes answer 409 (forge jobs need a store).
   */
  readonly forge?: ForgeServices;
  /** Largest training file (`/v1/files` upload, inline records of `/api/forge/finetune`) in bytes. @default 67108864 */
  readonly fileLimit?: number;
  /** When set, every `/v1` request must send `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /**
   * Keys, limits, budgets and metering (`/api/keys`, `/api/usage`); when set it also honours
   * `apiKey` (as an admin key) and the plain `apiKey` check below is not installed.
   */
  readonly gateway?: Gateway;
  /** The hub `/api/pull` (Ollama-compatible) downloads from; without it that route answers 409. */
  readonly hub?: HubClient;
  /** The pool of loaded models under the memory budget, behind `GET /api/loaded`. */
  readonly pool?: ModelPool;
  /** Names routed to external OpenAI-compatible engines (`grove upstream add`); the catalog should list them too (UpstreamCatalog). */
  readonly upstreams?: UpstreamRouter;
  /** CPU threads for the evaluations of `/api/aliases/:name/migrate`. @default every core */
  readonly threads?: number;
  /**
   * Folder of the bundled web app (`dist/web`, see `WEB_APP_DIR`), served at `/` with
   * `index.html` for unknown non-API paths; without it `/` is a plain 404.
   */
  readonly webRoot?: string;
  /**
   * The address the server will listen on: a loopback one (the default) makes it answer loopback
   * `Host` names only (see request-guard.ts).
   * @default "127.0.0.1"
   */
  readonly host?: string;
  /** `Host` names answered besides loopback ones (`--allowed-hosts`). */
  readonly allowedHosts?: readonly string[];
  /** Browser origins allowed cross-site, with CORS (`--cors-origins`). */
  readonly corsOrigins?: readonly string[];
  /** The model served by default (`--model`, or the embedded default): marked `default: true` in `/v1/models`. */
  readonly defaultModel?: string;
  /** Serve llama-server's `GET /slots` (off by default, as there: it shows what every slot holds). */
  readonly slotsEndpoint?: boolean;
  /** The engine's seed for generations that set none (`--seed`), as `/props` reports it; undefined: a new one each. */
  readonly seed?: number;
  readonly logger?: Logger;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();
const bearer = (header: string | undefined) => (header?.startsWith("Bearer ") ? header.slice(7) : "");

/** Maps fastify's own errors (body parsing, limits) onto Grove's, so one table answers all. */
function fromFastifyError(error: FastifyError, bodyLimit: number): unknown {
  if (error instanceof GroveError) return error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new PayloadTooLargeError(`The request body is over the limit of ${bodyLimit} bytes`, { cause: error });
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new InvalidRequestError(`Malformed JSON body: ${error.message}`, { cause: error });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return unsupportedMediaType(error);
    default:
      if (error instanceof SyntaxError || error.statusCode === 400) {
        return new InvalidRequestError(`Malformed request: ${error.message}`, { cause: error });
      }
      return error;
  }
}

/**
 * Slow senders are cut: a request's headers must arrive within this many milliseconds (a real
 * client sends them in one write; 200 sockets trickling headers were held 60 s by Node's defaults).
 */
export const HEADERS_TIMEOUT_MS = 10_000;
/** The whole request (headers and body) must arrive within this: a 64 MiB upload at 1 MB/s fits. */
export const REQUEST_TIMEOUT_MS = 120_000;

/** An incoming `x-request-id` is honoured when it is this short and plain (it goes into logs and usage rows). */
const REQUEST_ID = /^[\w.:@-]{1,128}$/;

/** Builds the HTTP app (OpenAI-compatible routes, health, errors); `listen` is the caller's. */
export function createServer(options: ServerOptions): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? 1 << 20;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit,
    requestIdHeader: false,
    genReqId: (raw) => {
      const incoming = raw.headers["x-request-id"];
      return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    return503OnClosing: true,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default), which would stretch them.
    http: { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1_000 },
    rewriteUrl: rewriteUnversioned,
  }) as unknown as FastifyInstance;

  // Before anything else: a request from a web page that must not drive this server never reaches a route or a parser.
  registerRequestGuard(app, {
    loopbackOnly: isLoopbackHost(options.host ?? "127.0.0.1"),
    allowedHosts: options.allowedHosts ?? [],
    corsOrigins: options.corsOrigins ?? [],
  });
  registerJsonBodyParser(app);

  // Every response (streams and errors included) names its request id, as every log line of it does (`reqId`).
  app.addHook("onRequest", async (request, reply) => {
    reply.raw.setHeader("x-request-id", String(request.id));
  });
  new GracefulShutdown(app);
  const metrics = new GroveMetrics({ engine: options.engine, ...(options.upstreams ? { upstreams: options.upstreams } : {}) });
  options.gateway?.onUsage((usage) => metrics.observeUsage(usage));
  const gateway = options.gateway;
  const apiKey = options.apiKey;
  // `/metrics` follows the admin rule: with keys configured, only an admin key may scrape.
  registerMetrics(app, metrics, async (request) => {
    if (gateway) gateway.requireAdmin(await gateway.authenticate(authorizationOf(request.headers)));
    else if (apiKey && !timingSafeEqual(sha256(bearer(authorizationOf(request.headers))), sha256(apiKey))) throw new UnauthorizedError();
  });
  if (options.upstreams) registerUpstreamProxy(app, options.upstreams);

  if (options.gateway) {
    registerGatewayHooks(app, options.gateway);
  } else if (options.apiKey) {
    const expected = sha256(options.apiKey);
    app.addHook("onRequest", async (request) => {
      if (!isKeyedPath(request.url.split("?")[0]!)) return;
      const presented = bearer(authorizationOf(request.headers));
      // Hash both sides so the comparison takes the same time whatever the lengths.
      if (!timingSafeEqual(sha256(presented), expected)) throw new UnauthorizedError();
    });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapped = fromFastifyError(error, bodyLimit);
    const { status, body } = toErrorResponse(mapped);
    if (status >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ code: body.error.code, status }, body.error.message);
    if (status === 503) reply.header("retry-after", "1");
    if (mapped instanceof PayloadTooLargeError) drainRejectedBody(request, reply);
    if (mapped instanceof RateLimitError) reply.header("retry-after", String(mapped.retryAfterSeconds));
    return reply.code(status).send(body);
  });
  if (options.webRoot !== undefined) registerWebApp(app, options.webRoot);
  app.setNotFoundHandler((request, reply) => {
    if (options.webRoot !== undefined && sendWebAppFallback(request, reply)) return reply;
    const { status, body } = toErrorResponse(new NotFoundError(`No route for ${request.method} ${request.url}`));
    // Ollama's clients read its error shape, {"error": "…"}, under /api/.
    return reply.code(status).send(isOllamaPath(request.url.split("?")[0]!) ? { error: body.error.message } : body);
  });

  const catalog = options.catalog ?? new EngineCatalog(options.engine);
  const defaultModel = () => options.defaultModel ?? (options.engine.models.length === 1 ? options.engine.models[0]!.info.id : undefined);
  registerDefaultModel(app, defaultModel);
  registerModelRoutes(app, options.engine, catalog, options.defaultModel);
  registerChatCompletionsRoute(app, catalog);
  registerCompletionsRoute(app, catalog);
  registerEmbeddingsRoute(app, catalog);
  registerResponsesRoute(app, catalog);
  registerMessagesRoutes(app, catalog);
  registerLlamaNativeRoutes(app, { catalog, defaultModel, slots: options.slotsEndpoint ?? false, ...(options.seed === undefined ? {} : { seed: options.seed }) });
  if (options.store) registerAdminRoutes(app, options.store, options.results);
  registerOllamaRoutes(app, { engine: options.engine, catalog, store: options.store, hub: options.hub, ...(options.pool === undefined ? {} : { pool: options.pool }) });
  if (options.gateway) {
    registerKeyRoutes(app, options.gateway);
    registerUsageRoutes(app, options.gateway);
  }
  const fileLimit = options.fileLimit ?? 64 << 20;
  registerForgeRoutes(app, options.forge, Math.max(bodyLimit, fileLimit));
  registerFineTuningRoutes(app, options.forge);
  registerFileRoutes(app, options.forge, fileLimit);
  // Store mode only, as the forge routes.
  const measured = options.forge === undefined || options.store === undefined || options.results === undefined ? undefined : { store: options.store, results: options.results };
  registerPlanRoutes(app, measured);
  registerResultRoutes(app, measured);
  registerLoadedRoute(app, options.engine, options.pool);
  if (options.store) registerAliasRoutes(app, options.store, options.results, options.threads, options.forge ?? {});
  return app;
}

/** True for a bind address on loopback: 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "[::1]";
}

/** Refuses to expose the API beyond this machine without a key (`--api-key`, or keys made with `grove keys create`). */
export function checkBindSafety(host: string, apiKey: string, keysExist = false): void {
  if (!isLoopbackHost(host) && !apiKey && !keysExist) {
    throw new ConfigError(
      `Refusing to listen on ${host} without an API key: anyone who reaches it could use the model. ` +
        "Create one with grove keys create, set --api-key (GROVE_API_KEY), or bind 127.0.0.1",
      { param: "--host" },
    );
  }
}
