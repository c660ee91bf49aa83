import type { KeyLimits } from "./service-store.js";

/** Which per-minute or concurrency limit refused a request. */
export type RateLimitName = "rpm" | "tpm" | "concurrency";

/** What {@link RateLimiter.acquire} hands back to admitted requests, for {@link RateLimiter.release}. */
export interface RateTicket {
  readonly keyId: string;
  /** Start of the minute window the tokens were counted in (ms since the epoch). */
  readonly windowStart: number;
  readonly tokens: number;
  /** The shared limiter's handle on the request's concurrency slot (see RedisRateLimiter). */
  readonly lease?: string;
}

/** The answer to {@link RateLimiter.acquire}. */
export type RateDecision =
  | { readonly admitted: true; readonly ticket: RateTicket }
  | { readonly admitted: false; readonly limit: RateLimitName; readonly retryAfterSeconds: number };

/**
 * Per-key requests/minute, tokens/minute and concurrency. Counted in fixed one-minute windows
 * (UTC minute boundaries): a key may burst up to twice its rate across a boundary, the price of
 * counters that a Redis `INCR`/`EXPIRE` implementation can share between replicas.
 */
export interface RateLimiter {
  /** Takes one request, `tokens` (worst case) and a concurrency slot, or nothing when any limit refuses. */
  acquire(keyId: string, limits: KeyLimits, tokens: number, now: number): Promise<RateDecision>;
  /** Frees the concurrency slot and corrects the window's tokens from the reserved count to `usedTokens`. */
  release(ticket: RateTicket, usedTokens: number): Promise<void>;
}

const MINUTE_MS = 60_000;

interface Counters {
  windowStart: number;
  requests: number;
  tokens: number;
  inFlight: number;
}

/** The in-process {@link RateLimiter}: right for one server; several replicas need a shared one. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #counters = new Map<string, Counters>();

  #countersOf(keyId: string, windowStart: number): Counters {
    let counters = this.#counters.get(keyId);
    if (!counters) {
      counters = { windowStart, requests: 0, tokens: 0, inFlight: 0 };
      this.#counters.set(keyId, counters);
    }
    if (counters.windowStart !== windowStart) {
      counters.windowStart = windowStart;
      counters.requests = 0;
      counters.tokens = 0;
    }
    return counters;
  }

  async acquire(keyId: string, limits: KeyLimits, tokens: number, now: number): Promise<RateDecision> {
    const windowStart = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const counters = this.#countersOf(keyId, windowStart);
    const untilNextWindow = (windowStart + MINUTE_MS - now) / 1000;
    if (limits.concurrency !== undefined && counters.inFlight >= limits.concurrency) {
      return { admitted: false, limit: "concurrency", retryAfterSeconds: 1 };
    }
    if (limits.rpm !== undefined && counters.requests >= limits.rpm) {
      return { admitted: false, limit: "rpm", retryAfterSeconds: untilNextWindow };
    }
    if (limits.tpm !== undefined && counters.tokens + tokens > limits.tpm) {
      return { admitted: false, limit: "tpm", retryAfterSeconds: untilNextWindow };
    }
    counters.requests++;
    counters.tokens += tokens;
    counters.inFlight++;
    return { admitted: true, ticket: { keyId, windowStart, tokens } };
  }

  async release(ticket: RateTicket, usedTokens: number): Promise<void> {
    const counters = this.#counters.get(ticket.keyId);
    if (!counters) return;
    counters.inFlight = Math.max(0, counters.inFlight - 1);
    // A request that outlived its window leaves the new window's count alone.
    if (counters.windowStart === ticket.windowStart) counters.tokens = Math.max(0, counters.tokens + usedTokens - ticket.tokens);
  }
}
