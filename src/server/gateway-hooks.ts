import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Admission, Gateway, Principal, RequestOutcome } from "../gateway/gateway.js";
import { authorizationOf, isKeyedPath } from "./api-paths.js";
import { toErrorResponse } from "./error-table.js";

/**
 * Routes any valid key may call: inference and model listings, OpenAI's and Ollama's. Every
 * other `/v1` and `/api` route (keys, usage, store, forge, files, fine-tuning, plan, results)
 * needs an admin key.
 */
const CLIENT_ROUTES: readonly RegExp[] = [
  /^POST \/v1\/(chat\/completions|chat\/completions\/input_tokens|completions|embeddings|responses|messages|messages\/count_tokens)$/,
  /^GET \/v1\/models(\/[^/]+)?$/,
  // llama-server's own endpoints (routes/llama-native.ts); /slots stays admin-only.
  /^POST \/(completion|infill|tokenize|detokenize|apply-template|embedding|embeddings)$/,
  /^GET \/props$/,
  /^POST \/api\/(chat|generate|embed|embeddings|show)$/,
  /^GET \/api\/(tags|ps|version)$/,
];

/** True for a route any key may call (see CLIENT_ROUTES). */
export function isClientRoute(method: string, path: string): boolean {
  const line = `${method === "HEAD" ? "GET" : method} ${path}`;
  return CLIENT_ROUTES.some((pattern) => pattern.test(line));
}

/** The model and token counts a route knows before it generates. */
export interface MeterAdmitOptions {
  readonly model: string;
  readonly digest: string;
  /** Exact, or an upper bound (embeddings: UTF-8 bytes + 2 per string input). */
  readonly promptTokens: number;
  readonly maxCompletionTokens: number;
}

/**
 * A request's metering, as routes see it: check the model scope before loading, admit
 * (reserve) before generating, finish (settle + usage row) once at the end. Without a
 * gateway every call does nothing.
 */
export class RequestMeter {
  #admission: Admission | undefined;
  /** Adapter forks applied through `lora` ({@link applyFork}): the request is priced at the dearest. */
  readonly #pricedDigests: string[] = [];
  /** Set once a route streams: from then on it alone finishes the meter. */
  streaming = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly gateway: Gateway | undefined,
    private readonly principal: Principal | undefined,
    private readonly startedAt: number,
  ) {}

  /** @throws PermissionDeniedError for a model outside the key's scope */
  checkModel(model: string): void {
    if (this.gateway && this.principal) this.gateway.checkModel(this.principal, model);
  }

  /**
   * An adapter fork the request applies to its base through `lora`: its names must be in the
   * key's scope (one is enough), and the request is priced at least as the fork.
   */
  applyFork(fork: { readonly names: readonly string[]; readonly digest: string }): void {
    if (this.gateway && this.principal) {
      const allowed = fork.names.some((name) => {
        try {
          this.gateway!.checkModel(this.principal!, name);
          return true;
        } catch {
          return false;
        }
      });
      if (!allowed) this.gateway.checkModel(this.principal, fork.names[0] ?? fork.digest);
    }
    this.#pricedDigests.push(fork.digest);
  }

  /** Reserves the worst case; @throws RateLimitError (429) */
  async admit(options: MeterAdmitOptions): Promise<void> {
    if (!this.gateway || !this.principal || this.#admission) return;
    this.#admission = await this.gateway.admit(this.principal, {
      requestId: String(this.request.id),
      endpoint: this.request.routeOptions.url ?? this.request.url.split("?")[0]!,
      model: options.model,
      modelDigest: options.digest,
      ...(this.#pricedDigests.length === 0 ? {} : { pricedDigests: [...this.#pricedDigests] }),
      promptTokens: options.promptTokens,
      maxCompletionTokens: options.maxCompletionTokens,
      startedAt: this.startedAt,
    });
  }

  /** Settles to what was really used and writes the usage row (once). */
  async finish(outcome: RequestOutcome): Promise<void> {
    await this.#admission?.finish(outcome);
  }

  /** Settles a request that failed with `error`, counting what it used before (often nothing). */
  async fail(error: unknown, used: Partial<RequestOutcome> = {}): Promise<void> {
    await this.finish({ promptTokens: 0, completionTokens: 0, cancelled: false, ...used, status: toErrorResponse(error).status });
  }

  /** True when admitted and not yet finished. */
  get pending(): boolean {
    return this.#admission !== undefined && !this.#admission.finished;
  }
}

const meters = new WeakMap<FastifyRequest, RequestMeter>();

/** The meter of a request (a do-nothing one when the server has no gateway). */
export function meterOf(request: FastifyRequest): RequestMeter {
  let meter = meters.get(request);
  if (!meter) {
    meter = new RequestMeter(request, undefined, undefined, Date.now());
    meters.set(request, meter);
  }
  return meter;
}

/** The caller of a request, set by the gateway's hook; `undefined` without a gateway. */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

const principals = new WeakMap<FastifyRequest, Principal>();

/**
 * Puts the gateway in front of `/v1` and `/api`: authenticates every request (401/403 before
 * any body is read), requires an admin key off the client routes, and, for requests a route
 * admitted but did not finish (an error thrown after admission), settles them when the
 * response ends, releasing their reservation.
 */
export function registerGatewayHooks(app: FastifyInstance, gateway: Gateway): void {
  app.addHook("onRequest", async (request) => {
    const startedAt = Date.now();
    const path = request.url.split("?")[0]!;
    if (!isKeyedPath(path)) return;
    const principal = await gateway.authenticate(authorizationOf(request.headers));
    if (!isClientRoute(request.method, path)) gateway.requireAdmin(principal);
    principals.set(request, principal);
    meters.set(request, new RequestMeter(request, gateway, principal, startedAt));
  });
  app.addHook("onResponse", async (request, reply) => {
    const meter = meters.get(request);
    if (meter === undefined || meter.streaming || !meter.pending) return;
    await meter.finish({ promptTokens: 0, completionTokens: 0, status: reply.statusCode, cancelled: reply.statusCode === 499 });
  });
}
