/**
 * What the gateway keeps: API keys (hashed), budget windows and their in-flight
 * reservations, usage rows and prices. `SqliteServiceStore` is the embedded implementation;
 * a PostgreSQL one implements the same interface so that several gateway replicas share one
 * budget. Every method is async for that reason, even where SQLite answers synchronously.
 */

/** How often a budget starts again (UTC calendar day or month). */
export type BudgetPeriod = "day" | "month";

/** The limits of one key; `undefined` means unlimited. */
export interface KeyLimits {
  /** Requests per minute (fixed one-minute windows). */
  readonly rpm?: number;
  /** Tokens (prompt + completion, worst case reserved) per minute (fixed one-minute windows). */
  readonly tpm?: number;
  /** Requests in flight at once. */
  readonly concurrency?: number;
  /** Tokens (prompt + completion) per period. */
  readonly budgetTokens?: number;
  /** US dollars per period, priced with `grove price set`. */
  readonly budgetUsd?: number;
  /** The budget's period. @default "month" when a budget is set */
  readonly period?: BudgetPeriod;
}

/** What creating a key takes; the secret itself never reaches the store, only its hash. */
export interface NewKey {
  readonly name: string;
  /** sha256 (hex) of the whole secret. */
  readonly secretHash: string;
  /** The first characters of the secret, for people to tell keys apart (`grove-sk-AbC1`). */
  readonly prefix: string;
  /** May call admin routes (`/api/keys`, `/api/usage`, forge, store). */
  readonly admin: boolean;
  /** Model names or aliases the key may use, as clients send them; `undefined`: every model. */
  readonly models?: readonly string[];
  /** ISO 8601; `undefined`: never expires. */
  readonly expiresAt?: string;
  readonly limits: KeyLimits;
}

/** One stored key (never its secret). */
export interface KeyRecord extends Omit<NewKey, "secretHash"> {
  /** `key_` and 16 hex digits. */
  readonly id: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

/** A request for budget, made before admission. */
export interface ReserveRequest {
  readonly keyId: string;
  readonly limits: KeyLimits;
  /** Worst-case tokens: prompt tokens + max_tokens. */
  readonly tokens: number;
  /** Worst-case cost in US dollars. */
  readonly usd: number;
  readonly now: Date;
}

/** The answer to {@link ServiceStore.reserve}. */
export type ReserveResult =
  | { readonly admitted: true; readonly reservationId: string }
  | {
      readonly admitted: false;
      /** `budget_tokens` or `budget_usd`: the budget that would be overspent. */
      readonly limit: "budget_tokens" | "budget_usd";
      /** True when the request fits once the in-flight reservations settle; false when only the next period helps. */
      readonly fitsAfterInFlight: boolean;
      /** When the period ends (ISO 8601). */
      readonly periodEnd: string;
    };

/** One metered request. */
export interface UsageRecord {
  /** The request id (fastify's, or `x-request-id`). */
  readonly requestId: string;
  /** `undefined` when the server has no keys (open mode); `api-key` for the `--api-key` key. */
  readonly keyId?: string;
  /** `sha256:…` of the model that served it; empty when refused before a model was chosen. */
  readonly modelDigest: string;
  /** The name or alias the client asked for. */
  readonly model: string;
  readonly endpoint: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costUsd: number;
  /** Milliseconds to the first generated token; `undefined` when none was generated. */
  readonly ttftMs?: number;
  readonly durationMs: number;
  /** The HTTP status answered (499: the client went away). */
  readonly status: number;
  readonly cancelled: boolean;
  readonly createdAt: string;
}

/** Filters of {@link ServiceStore.listUsage} and {@link ServiceStore.summarizeUsage}. */
export interface UsageQuery {
  readonly keyId?: string;
  /** ISO 8601: rows created at or after it. */
  readonly since?: string;
  /** Most rows, newest first. @default 1000 */
  readonly limit?: number;
}

/** How {@link ServiceStore.summarizeUsage} groups rows. */
export type UsageGrouping = "model" | "key" | "day" | "hour";

/** How {@link ServiceStore.summarizeUsage} splits each group again (usage over time, per model or key). */
export type UsageSplit = "model" | "key";

/** One group of usage rows. */
export interface UsageSummary {
  /** The model digest, key id (`-` for none), UTC day (`YYYY-MM-DD`) or UTC hour (`YYYY-MM-DDTHH`). */
  readonly group: string;
  /** With a split: the model digest or key id (`-` for none) within the group. */
  readonly split?: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costUsd: number;
  readonly cancelled: number;
  /** Requests answered with a status of 400 or more. */
  readonly errors: number;
  /** Mean time to first token over the requests that generated one. */
  readonly meanTtftMs: number | null;
}

/** A key's budget in the current period. */
export interface BudgetState {
  readonly periodStart: string;
  readonly spentTokens: number;
  readonly reservedTokens: number;
  readonly spentUsd: number;
  readonly reservedUsd: number;
}

/** A model's price, per million tokens, US dollars. */
export interface PriceRecord {
  readonly modelDigest: string;
  readonly inputPer1m: number;
  readonly outputPer1m: number;
  readonly updatedAt: string;
}

/** The gateway's storage; see the module comment. */
export interface ServiceStore {
  /** True when any key was ever created (revoked and expired ones count): the API then needs a key. */
  hasKeys(): Promise<boolean>;
  createKey(key: NewKey, now: Date): Promise<KeyRecord>;
  /** The key whose secret hashes to `secretHash` (an index lookup: no secret is compared byte by byte). */
  findKeyByHash(secretHash: string): Promise<KeyRecord | undefined>;
  getKey(id: string): Promise<KeyRecord | undefined>;
  listKeys(): Promise<KeyRecord[]>;
  /** Marks a key revoked (idempotent); throws NotFoundError for an unknown id. */
  revokeKey(id: string, now: Date): Promise<KeyRecord>;
  /**
   * Reserves budget atomically: admitted only if spent + reserved + this request stays within
   * every budget of the key, checked and written in one statement/transaction.
   */
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  /**
   * Settles a reservation to what was really used and records the usage row, in one
   * transaction. Without a reservation (refused or unbudgeted requests) it only records the row.
   */
  settle(reservationId: string | undefined, usage: UsageRecord): Promise<void>;
  /**
   * Releases every reservation made before `before` (left by a replica that crashed mid-request):
   * deletes it and takes its tokens and cost out of its window's `reserved`, in one transaction,
   * so a concurrent settle of the same reservation either settles it or finds it gone. A request
   * that settles after its reservation was released still records its usage row, but its spend
   * is not added to the budget window. Returns how many were released.
   */
  expireReservations(before: Date): Promise<number>;
  budgetState(keyId: string, limits: KeyLimits, now: Date): Promise<BudgetState>;
  listUsage(query: UsageQuery): Promise<UsageRecord[]>;
  /** Sums per group (and per split within each group when `split` is given), ordered by group then split. */
  summarizeUsage(query: UsageQuery, by: UsageGrouping, split?: UsageSplit): Promise<UsageSummary[]>;
  setPrice(price: PriceRecord): Promise<void>;
  getPrice(modelDigest: string): Promise<PriceRecord | undefined>;
  listPrices(): Promise<PriceRecord[]>;
  close(): Promise<void>;
}

/** Start and end (ISO 8601, UTC) of the budget period holding `now`. */
export function periodBounds(period: BudgetPeriod, now: Date): { start: string; end: string } {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const start = period === "day" ? new Date(Date.UTC(year, month, now.getUTCDate())) : new Date(Date.UTC(year, month, 1));
  const end = period === "day" ? new Date(Date.UTC(year, month, now.getUTCDate() + 1)) : new Date(Date.UTC(year, month + 1, 1));
  return { start: start.toISOString(), end: end.toISOString() };
}

/** A request's cost in US dollars under a price (none: free). */
export function costOf(price: PriceRecord | undefined, promptTokens: number, completionTokens: number): number {
  if (!price) return 0;
  return (promptTokens * price.inputPer1m + completionTokens * price.outputPer1m) / 1e6;
}
