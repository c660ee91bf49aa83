import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { ConfigError } from "../core/errors.js";
import { maskUrl } from "../core/mask-url.js";
import type { RateDecision, RateLimiter, RateLimitName, RateTicket } from "./rate-limiter.js";
import type { KeyLimits } from "./service-store.js";

const MINUTE_MS = 60_000;

// KEYS: the key's minute window (a hash: requests, tokens), its in-flight leases (a sorted set
// scored by expiry). ARGV: rpm, tpm, concurrency (-1: none), tokens, window TTL ms, lease ms,
// lease id. Lease times come from the Redis server's clock, the one clock every replica shares.
// Answers 0 (admitted) or the index of the refusing limit in REFUSALS.
const ACQUIRE = `
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local concurrency = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if concurrency >= 0 and redis.call('ZCARD', KEYS[2]) >= concurrency then return 1 end
local requests = tonumber(redis.call('HGET', KEYS[1], 'requests') or '0')
if rpm >= 0 and requests >= rpm then return 2 end
local used = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
if tpm >= 0 and used + tokens > tpm then return 3 end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBY', KEYS[1], 'tokens', tokens)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
`;

// KEYS: as ACQUIRE. ARGV: lease id, token correction (used - reserved). A window that already
// expired is not recreated: a request that outlived its window leaves the new one alone.
const RELEASE = `
redis.call('ZREM', KEYS[2], ARGV[1])
local delta = tonumber(ARGV[2])
if delta ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HINCRBY', KEYS[1], 'tokens', delta) < 0 then redis.call('HSET', KEYS[1], 'tokens', 0) end
end
return 0
`;

const REFUSALS: readonly (RateLimitName | undefined)[] = [undefined, "concurrency", "rpm", "tpm"];

/** Options of {@link RedisRateLimiter.open}. */
export interface RedisRateLimiterOptions {
  /** Prepended to every Redis key, so that several Grove deployments can share one Redis. @default "grove:" */
  readonly prefix?: string;
  /**
   * How long a concurrency slot is held at most, ms: the safety net for a replica that died
   * holding slots. A request running longer stops counting against the concurrency limit.
   * @default 900000 (15 minutes)
   */
  readonly leaseMs?: number;
  /** How long to wait for the connection at startup, ms. @default 5000 */
  readonly connectTimeoutMs?: number;
  /** Called with connection errors after startup (ioredis reconnects by itself). */
  readonly onError?: (error: Error) => void;
}

/**
 * The shared {@link RateLimiter}: the same fixed one-minute windows as MemoryRateLimiter, kept
 * in Redis so that every replica counts against one limit. Each check-and-take is one Lua
 * script (atomic on the Redis server); a concurrency slot is a lease in a sorted set, freed by
 * release or, should the replica die first, by its expiry.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #leaseMs: number;

  private constructor(redis: Redis, prefix: string, leaseMs: number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#leaseMs = leaseMs;
  }

  /**
   * Connects to a `redis://` (or `rediss://`) URL and checks it with a PING.
   * @throws ConfigError for a malformed URL or an unreachable server
   */
  static async open(url: string, options: RedisRateLimiterOptions = {}): Promise<RedisRateLimiter> {
    const source = "--redis (GROVE_REDIS_URL)";
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new ConfigError(`${source} must be a URL such as redis://host:6379/0`, { cause: error, param: "--redis" });
    }
    if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
      throw new ConfigError(`${source} must start with redis:// or rediss://; got ${parsed.protocol}//…`, { param: "--redis" });
    }
    let started = false;
    let firstError: Error | undefined;
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      maxRetriesPerRequest: 1,
      // At startup, fail at once instead of retrying forever; afterwards reconnect with a short backoff.
      retryStrategy: (attempt) => (started ? Math.min(attempt * 200, 2000) : null),
    });
    redis.on("error", (error: Error) => {
      if (!started) firstError ??= error;
      else options.onError?.(error);
    });
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      redis.disconnect();
      const cause = firstError ?? error;
      const reason = cause instanceof Error ? cause.message || (cause as NodeJS.ErrnoException).code || cause.name : String(cause);
      throw new ConfigError(`Cannot connect to Redis at ${maskUrl(url)} (set with ${source}): ${reason}`, { cause, param: "--redis" });
    }
    started = true;
    return new RedisRateLimiter(redis, options.prefix ?? "grove:", options.leaseMs ?? 15 * MINUTE_MS);
  }

  // Hash tags ({…}) keep a key's two entries in one slot, as a Redis Cluster script needs.
  #keys(keyId: string, windowStart: number): [string, string] {
    return [`${this.#prefix}rate:{${keyId}}:${windowStart}`, `${this.#prefix}rate:{${keyId}}:leases`];
  }

  async acquire(keyId: string, limits: KeyLimits, tokens: number, now: number): Promise<RateDecision> {
    const windowStart = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const lease = randomBytes(9).toString("base64url");
    const answer = (await this.#redis.eval(
      ACQUIRE,
      2,
      ...this.#keys(keyId, windowStart),
      limits.rpm ?? -1,
      limits.tpm ?? -1,
      limits.concurrency ?? -1,
      tokens,
      // The window outlives its minute a little, for release to correct it.
      2 * MINUTE_MS,
      this.#leaseMs,
      lease,
    )) as number;
    const refused = REFUSALS[answer];
    if (refused === undefined) return { admitted: true, ticket: { keyId, windowStart, tokens, lease } };
    const retryAfterSeconds = refused === "concurrency" ? 1 : (windowStart + MINUTE_MS - now) / 1000;
    return { admitted: false, limit: refused, retryAfterSeconds };
  }

  async release(ticket: RateTicket, usedTokens: number): Promise<void> {
    await this.#redis.eval(RELEASE, 2, ...this.#keys(ticket.keyId, ticket.windowStart), ticket.lease ?? "", usedTokens - ticket.tokens);
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
