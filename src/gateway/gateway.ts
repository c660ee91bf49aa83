import { timingSafeEqual } from "node:crypto";
import { InvalidApiKeyError, PermissionDeniedError, RateLimitError } from "../core/errors.js";
import type { Logger } from "../logging/logger.js";
import { bearerToken, hashSecret } from "./api-key.js";
import { MemoryRateLimiter, type RateLimiter, type RateTicket } from "./rate-limiter.js";
import { costOf, type KeyLimits, type KeyRecord, type PriceRecord, type ServiceStore, type UsageRecord } from "./service-store.js";

/** The key id usage rows carry for the single `--api-key` (GROVE_API_KEY) key. */
export const LEGACY_KEY_ID = "api-key";

/** Who is calling. */
export interface Principal {
  /** The key's id; `undefined` in open mode (no key exists and no `--api-key`). */
  readonly keyId?: string;
  /** The stored key (absent for `--api-key` and open mode). */
  readonly key?: KeyRecord;
  /** May call admin routes. True for `--api-key`, keys created with `--admin`, and open mode. */
  readonly admin: boolean;
}

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  readonly store: ServiceStore;
  /** @default a new MemoryRateLimiter */
  readonly limiter?: RateLimiter;
  /** The single `--api-key` secret, honoured as an admin key with no limits. */
  readonly apiKey?: string;
  readonly logger?: Logger;
  /** @default () => new Date() */
  readonly clock?: () => Date;
}

/** What a request asks of the gateway before it may run. */
export interface AdmitRequest {
  readonly requestId: string;
  /** `/v1/chat/completions`, … */
  readonly endpoint: string;
  /** The name or alias the client sent. */
  readonly model: string;
  readonly modelDigest: string;
  /**
   * Other models whose weights the request runs — adapter forks applied to the base through
   * llama-server's `lora` — so it is priced at the dearest of these and `modelDigest` (a priced
   * fork is never had at its base's price).
   */
  readonly pricedDigests?: readonly string[];
  /** Prompt tokens (exact, or an upper bound where the route says so). */
  readonly promptTokens: number;
  /** The most completion tokens the request may generate. */
  readonly maxCompletionTokens: number;
  /** When the request arrived (ms since the epoch), for its duration. */
  readonly startedAt: number;
}

/** How an admitted request ended. */
export interface RequestOutcome {
  readonly promptTokens: number;
  /** Tokens generated, whether or not the client was still there to receive them. */
  readonly completionTokens: number;
  readonly ttftMs?: number;
  /** The HTTP status answered (499: the client went away). */
  readonly status: number;
  readonly cancelled: boolean;
}

/** An admitted request's hold on its key's limits; {@link finish} settles it once (later calls do nothing). */
export interface Admission {
  finish(outcome: RequestOutcome): Promise<void>;
  readonly finished: boolean;
}

const sameSecret = (presented: string, expectedHash: Buffer) => timingSafeEqual(Buffer.from(hashSecret(presented), "hex"), expectedHash);

/** `llama3.2` and `llama3.2:latest` name the same model. */
const normalizeName = (name: string) => (name.includes(":") ? name : `${name}:latest`);

/**
 * The service layer between HTTP and the engine: who is calling (keys), what they may use
 * (model scope, admin), whether they may run now (rate limits, budgets: worst case reserved
 * before admission, settled to the real count after) and what they used (one usage row per
 * admitted or refused request). Knows nothing of HTTP: the server's hooks call it.
 */
export class Gateway {
  readonly store: ServiceStore;
  readonly #limiter: RateLimiter;
  readonly #legacyHash: Buffer | undefined;
  readonly #logger: Logger | undefined;
  readonly #clock: () => Date;
  readonly #usageListeners: ((usage: UsageRecord) => void)[] = [];

  constructor(options: GatewayOptions) {
    this.store = options.store;
    this.#limiter = options.limiter ?? new MemoryRateLimiter();
    this.#legacyHash = options.apiKey ? Buffer.from(hashSecret(options.apiKey), "hex") : undefined;
    this.#logger = options.logger;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Calls `listener` with every usage row as it is recorded (metrics count them); it must not throw. */
  onUsage(listener: (usage: UsageRecord) => void): void {
    this.#usageListeners.push(listener);
  }

  /** True when a request must present a key: `--api-key` is set or any key exists. */
  async keysRequired(): Promise<boolean> {
    return this.#legacyHash !== undefined || (await this.store.hasKeys());
  }

  /**
   * Who sends this `Authorization` header. Secrets are hashed and looked up by hash, so no
   * secret is compared byte by byte; the `--api-key` secret is compared with timingSafeEqual.
   * @throws InvalidApiKeyError (401) for a missing or unknown key when keys are required
   * @throws PermissionDeniedError (403) for a revoked or expired key
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = bearerToken(authorization);
    if (token !== undefined) {
      if (this.#legacyHash && sameSecret(token, this.#legacyHash)) return { keyId: LEGACY_KEY_ID, admin: true };
      const key = await this.store.findKeyByHash(hashSecret(token));
      if (key) {
        if (key.revokedAt !== undefined) throw new PermissionDeniedError(`The API key ${key.id} was revoked`);
        if (key.expiresAt !== undefined && new Date(key.expiresAt) <= this.#clock()) {
          throw new PermissionDeniedError(`The API key ${key.id} expired at ${key.expiresAt}`);
        }
        return { keyId: key.id, key, admin: key.admin };
      }
    }
    if (await this.keysRequired()) throw new InvalidApiKeyError();
    // Open mode: whatever the client sends (OpenAI clients always send something) is ignored.
    return { admin: true };
  }

  /** @throws PermissionDeniedError unless the caller may use admin routes. */
  requireAdmin(principal: Principal): void {
    if (!principal.admin) throw new PermissionDeniedError("This route needs an admin key (grove keys create --admin)");
  }

  /** @throws PermissionDeniedError when `model` is outside the key's scope. Checked before a model is loaded. */
  checkModel(principal: Principal, model: string): void {
    const allowed = principal.key?.models;
    if (allowed === undefined) return;
    const wanted = normalizeName(model);
    if (!allowed.some((name) => name === model || normalizeName(name) === wanted)) {
      throw new PermissionDeniedError(`The API key ${principal.keyId} may not use the model '${model}'`, { param: "model" });
    }
  }

  /**
   * Admits a request or refuses it with a 429: takes its rate-limit counts and reserves its
   * worst case (prompt + max completion tokens, and their price) from the key's budget. A
   * refused request is recorded as a usage row with status 429 and no tokens.
   * @throws RateLimitError
   */
  async admit(principal: Principal, request: AdmitRequest): Promise<Admission> {
    const price = await this.#priceOf(request);
    const limits: KeyLimits = principal.key?.limits ?? {};
    const keyId = principal.keyId;
    const worstTokens = request.promptTokens + request.maxCompletionTokens;
    let ticket: RateTicket | undefined;
    let reservationId: string | undefined;
    if (keyId !== undefined && (limits.rpm !== undefined || limits.tpm !== undefined || limits.concurrency !== undefined)) {
      const decision = await this.#limiter.acquire(keyId, limits, worstTokens, this.#clock().getTime());
      if (!decision.admitted) {
        await this.#recordRefusal(principal, request);
        throw new RateLimitError(`Rate limit reached for key ${keyId}: ${describeLimit(decision.limit, limits)}`, {
          retryAfterSeconds: decision.retryAfterSeconds,
        });
      }
      ticket = decision.ticket;
    }
    if (principal.key !== undefined && (limits.budgetTokens !== undefined || limits.budgetUsd !== undefined)) {
      const now = this.#clock();
      const usd = costOf(price, request.promptTokens, request.maxCompletionTokens);
      const result = await this.store.reserve({ keyId: principal.key.id, limits, tokens: worstTokens, usd, now });
      if (!result.admitted) {
        if (ticket) await this.#limiter.release(ticket, 0);
        await this.#recordRefusal(principal, request);
        const retryAfterSeconds = result.fitsAfterInFlight ? 1 : (new Date(result.periodEnd).getTime() - now.getTime()) / 1000;
        const asked = result.limit === "budget_tokens" ? `${worstTokens} tokens (prompt + max_tokens)` : `$${usd.toFixed(6)} at worst`;
        throw new RateLimitError(
          `The ${limits.period === "day" ? "daily" : "monthly"} budget of key ${principal.key.id} cannot cover this request's ${asked}` +
            (result.fitsAfterInFlight ? " while other requests are in flight" : ` before ${result.periodEnd}`),
          { retryAfterSeconds, quota: true },
        );
      }
      reservationId = result.reservationId;
    }
    return this.#admission(principal, request, price, ticket, reservationId);
  }

  /** The price of `modelDigest`, or of a `pricedDigests` model that would cost the request more. */
  async #priceOf(request: AdmitRequest): Promise<PriceRecord | undefined> {
    let chosen = await this.store.getPrice(request.modelDigest);
    for (const digest of request.pricedDigests ?? []) {
      const price = await this.store.getPrice(digest);
      const cost = (candidate: PriceRecord | undefined) => costOf(candidate, request.promptTokens, request.maxCompletionTokens);
      if (price !== undefined && (chosen === undefined || cost(price) > cost(chosen))) chosen = price;
    }
    return chosen;
  }

  #admission(principal: Principal, request: AdmitRequest, price: PriceRecord | undefined, ticket: RateTicket | undefined, reservationId: string | undefined): Admission {
    let finished = false;
    const limiter = this.#limiter;
    const store = this.store;
    const clock = this.#clock;
    const logger = this.#logger;
    const listeners = this.#usageListeners;
    return {
      get finished() {
        return finished;
      },
      async finish(outcome: RequestOutcome): Promise<void> {
        if (finished) return;
        finished = true;
        try {
          if (ticket) await limiter.release(ticket, outcome.promptTokens + outcome.completionTokens);
          const usage: UsageRecord = {
            requestId: request.requestId,
            ...(principal.keyId === undefined ? {} : { keyId: principal.keyId }),
            modelDigest: request.modelDigest,
            model: request.model,
            endpoint: request.endpoint,
            promptTokens: outcome.promptTokens,
            completionTokens: outcome.completionTokens,
            costUsd: costOf(price, outcome.promptTokens, outcome.completionTokens),
            ...(outcome.ttftMs === undefined ? {} : { ttftMs: outcome.ttftMs }),
            durationMs: Math.max(0, clock().getTime() - request.startedAt),
            status: outcome.status,
            cancelled: outcome.cancelled,
            createdAt: new Date(request.startedAt).toISOString(),
          };
          for (const listener of listeners) listener(usage);
          await store.settle(reservationId, usage);
        } catch (error) {
          // Metering must not turn a served request into a failed one; the log keeps the trace.
          logger?.error({ err: error, requestId: request.requestId }, "recording usage failed");
        }
      },
    };
  }

  async #recordRefusal(principal: Principal, request: AdmitRequest): Promise<void> {
    await this.#admission(principal, request, undefined, undefined, undefined).finish({
      promptTokens: 0,
      completionTokens: 0,
      status: 429,
      cancelled: false,
    });
  }
}

function describeLimit(limit: "rpm" | "tpm" | "concurrency", limits: KeyLimits): string {
  switch (limit) {
    case "rpm":
      return `${limits.rpm} requests per minute`;
    case "tpm":
      return `${limits.tpm} tokens per minute (prompt + max_tokens reserved)`;
    case "concurrency":
      return `${limits.concurrency} concurrent requests`;
  }
}
